"""Small file-system helpers the sandbox needs: atomic writes and mount-aware removal."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pifleet.errors import Failed

MOUNTINFO = Path("/proc/self/mountinfo")


def write_file(path: Path, content: str | bytes, mode: int = 0o644) -> None:
    """Write `path` atomically (temp file + rename) with `mode`, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    return field.encode().decode("unicode_escape") if "\\" in field else field


def mounts_under(path: Path, mountinfo: Path = MOUNTINFO) -> list[Path]:
    """Mount points at or below `path` in this process's mount namespace, deepest first."""
    base = os.path.realpath(path)
    found = []
    for line in mountinfo.read_text().splitlines():
        point = _unescape(line.split()[4])
        if point == base or point.startswith(base.rstrip("/") + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_tree(path: Path) -> None:
    """Delete a folder, refusing to descend into anything mounted below it.

    A crashed debootstrap can leave /proc, /sys or /dev bind-mounted inside its target;
    deleting through such a mount would delete the host's files.
    """
    if not path.exists() and not path.is_symlink():
        return
    mounted = mounts_under(path)
    if mounted:
        raise Failed(f"not removing {path}: still mounted there: "
                           + ", ".join(map(str, mounted)))
    shutil.rmtree(path)
