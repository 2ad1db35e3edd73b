"""What this machine knows about all its sandboxes: one small file per sandbox under
/run/pifleet, and one lock for decisions that involve more than one sandbox (choosing an
address block, removing what vanished sandboxes left).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

RUN_ENV = "PIFLEET_RUN"
DEFAULT_RUN = Path("/run/pifleet")


def run_dir() -> Path:
    """$PIFLEET_RUN or /run/pifleet, created on demand."""
    path = Path(os.environ.get(RUN_ENV) or DEFAULT_RUN)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Entry:
    """One sandbox as the machine-wide registry records it."""

    ident: str
    directory: str
    slot: int


def _entries_dir() -> Path:
    path = run_dir() / "sandboxes"
    path.mkdir(exist_ok=True)
    return path


@contextmanager
def machine_lock() -> Iterator[None]:
    """Hold the machine-wide sandbox lock (blocking)."""
    with (run_dir() / "lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def dir_lock(folder: Path) -> Iterator[None]:
    """Hold the lock of one sandbox folder, so `up` and `down` of it never overlap."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def entries() -> list[Entry]:
    """Every registered sandbox (unreadable files are skipped)."""
    found = []
    for path in sorted(_entries_dir().glob("*.json")):
        try:
            found.append(Entry(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return found


def register(entry: Entry) -> None:
    """Record a sandbox (replacing an earlier record of the same id)."""
    path = _entries_dir() / f"{entry.ident}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(entry)) + "\n")
    os.replace(tmp, path)


def unregister(ident: str) -> None:
    """Forget a sandbox."""
    (_entries_dir() / f"{ident}.json").unlink(missing_ok=True)
