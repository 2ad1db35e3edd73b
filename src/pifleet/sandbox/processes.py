"""Host processes of the sandbox: start daemonized, find again, stop for sure.

A pid alone is not proof (pids are reused), so a process counts as ours only when its command
line still contains a marker we put there: the sandbox's own state path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

PROC = Path("/proc")


def cmdline(pid: int) -> list[str]:
    """A process's argv ([] if it is gone)."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_zombie(pid: int) -> bool:
    """True for a process that exited and waits for its parent to reap it."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def exists(pid: int | None) -> bool:
    """True while `pid` is a process that has not exited (whatever it runs)."""
    if not pid:
        return False
    return (PROC / str(pid)).exists() and not is_zombie(pid)


def alive(pid: int | None, marker: str) -> bool:
    """True if `pid` runs and its argv mentions `marker`."""
    if not pid:
        return False
    return not is_zombie(pid) and any(marker in arg for arg in cmdline(pid))


def find(marker: str) -> list[int]:
    """Every live process whose argv mentions `marker`."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            pid = int(entry.name)
            if any(marker in arg for arg in cmdline(pid)) and not is_zombie(pid):
                found.append(pid)
    return sorted(found)


def read_pid(path: Path) -> int | None:
    """The pid in a pid file, or None."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def spawn(argv: Sequence[str], log: Path, *, env: dict[str, str] | None = None,
          pid_file: Path | None = None) -> int:
    """Start `argv` as a daemon in its own session, output appended to `log`. Returns its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(list(argv), stdin=devnull, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True,
                                env={**os.environ, **(env or {})})
    # The daemon outlives us; nobody waits for it here, so mark it as handled.
    proc.returncode = 0
    if pid_file:
        pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def _reap(pid: int) -> None:
    # Our own children become zombies until reaped; others are reaped by their parent or init.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until the processes are gone; returns those still alive after `timeout`."""
    remaining = set(pids)
    deadline = time.monotonic() + timeout
    while remaining:
        for pid in list(remaining):
            _reap(pid)
            if is_zombie(pid) or not (PROC / str(pid)).exists():
                remaining.discard(pid)
        if not remaining or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return sorted(remaining)


def signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    """Send `sig` to each pid, ignoring those already gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def stop(pids: Iterable[int], timeout: float = 20.0) -> list[int]:
    """SIGTERM, wait up to `timeout`, then SIGKILL what is left. Returns the pids killed hard."""
    pids = list(pids)
    signal_all(pids, signal.SIGTERM)
    left = wait_gone(pids, timeout)
    if left:
        signal_all(left, signal.SIGKILL)
        wait_gone(left, 5.0)
    return left
