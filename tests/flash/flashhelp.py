"""Helpers for the flash tests: the real CLI, the boot partition of a card, fsck, digests."""

from __future__ import annotations

import hashlib
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from pifleet.flash import mbr
from pifleet.flash.fat import FatVolume

PIFLEET = Path(sys.executable).parent / "pifleet"


def run(*args: str | Path, cache: Path | None = None, stdin: str = ""
        ) -> subprocess.CompletedProcess[str]:
    """The real `pifleet` command; output captured as text."""
    env = dict(os.environ)
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    return subprocess.run([str(PIFLEET), *map(str, args)], capture_output=True, text=True,
                          env=env, input=stdin, timeout=120, check=False)


def boot_volume(path: Path | str) -> FatVolume:
    """The FAT boot partition of a flashed card or file, located through its MBR."""
    with open(path, "rb") as handle:
        part = mbr.boot_partition(handle.read(512))
    assert part is not None, f"{path} has no FAT boot partition in its MBR"
    return FatVolume(Path(path), part.start)


def fsck_fat(path: Path | str, tmp_path: Path) -> str:
    """`fsck.fat -n` on the boot partition copied out of `path`; returns its output."""
    with open(path, "rb") as handle:
        part = mbr.boot_partition(handle.read(512))
        assert part is not None
        handle.seek(part.start)
        data = handle.read(part.size)
    copy = tmp_path / "boot-partition.fat"
    copy.write_bytes(data)
    proc = subprocess.run(["fsck.fat", "-n", str(copy)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def digest(path: Path | str, length: int | None = None) -> str:
    """SHA-256 of a file or device (the first `length` bytes)."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        remaining = length
        while True:
            block = handle.read(1 << 20 if remaining is None else min(1 << 20, remaining))
            if not block:
                break
            sha.update(block)
            if remaining is not None:
                remaining -= len(block)
    return sha.hexdigest()


def head_is_blank(path: Path | str) -> bool:
    """No MBR signature: the card does not look complete."""
    with open(path, "rb") as handle:
        return handle.read(512)[510:512] != b"\x55\xaa"


def read_until(fd: int, wanted: bytes, seconds: float) -> bytes:
    """What a child on a pseudo-terminal printed, up to `wanted` or `seconds`."""
    seen = b""
    deadline = time.monotonic() + seconds
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen
