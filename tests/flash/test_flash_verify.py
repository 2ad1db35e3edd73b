"""The read-back check: it reads the card itself (past any cache) and finds a changed byte in
written data and in a range that was zero-filled; the card then gets no partition table."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from flashhelp import head_is_blank, run

from pifleet.errors import Failed
from pifleet.events import Emitter
from pifleet.flash import Policy, Request, execute, plan
from pifleet.flash.maps import Usage

Image = Callable[[str], Path]
Packed = Callable[[str, str], Path]
Loop = Callable[..., str]
MIB = 1024 * 1024


def _ranges(image: Path) -> tuple[int, int]:
    """A data block (not zero) and a zero block that a used-range write writes."""
    size = image.stat().st_size
    fd = os.open(image, os.O_RDONLY)
    try:
        needed = Usage.scan(fd, size).needed(MIB, size)
        data = zero = None
        for start, end in needed:
            for offset in range(start, end, 4096):
                block = os.pread(fd, 4096, offset)
                if block == bytes(4096):
                    zero = zero or offset
                else:
                    data = data or offset
        assert data is not None and zero is not None
        return data, zero
    finally:
        os.close(fd)


@pytest.mark.parametrize("kind", ["raw", "xz"])  # compared with the image, or by SHA-256
@pytest.mark.parametrize(("which", "message"), [
    ("data", "differ.? from the image"), ("zero", "should read back as zeros")])
def test_a_byte_changed_behind_the_writer_is_found(image: Image, packed: Packed, loop: Loop,
                                                   which: str, message: str, kind: str) -> None:
    source = image("many_groups")
    device = loop(100)
    backing = Path(device.replace("/dev/", "/sys/block/") + "/loop/backing_file"
                   ).read_text().strip()
    data, zero = _ranges(source)
    at = data if which == "data" else zero
    checked = plan(Request(str(packed("many_groups", kind)), [Path(device)], [None],
                           format="none",
                           policy=Policy(allow_non_removable=True)), Emitter())

    def spoil(what: str, done: int, total: int | None) -> None:
        if what == "write" and done == total:
            # Behind the loop device: into its backing file, as a failing card would.
            with open(backing, "r+b") as handle:
                handle.seek(at + 100)
                handle.write(b"\x5a")
                handle.flush()
                os.fsync(handle.fileno())

    with pytest.raises(Failed, match=message):
        execute(checked, Emitter(), spoil)
    assert head_is_blank(device)


def test_the_summary_says_what_was_written_and_verified(image: Image, loop: Loop) -> None:
    device = loop(100)
    proc = run("flash", image("many_groups"), device, "--format", "none",
               "--allow-non-removable", "--yes")
    assert proc.returncode == 0, proc.stderr
    assert " MB written, " in proc.stdout and " MB verified" in proc.stdout
    proc = run("flash", image("many_groups"), device, "--format", "none", "--no-verify",
               "--allow-non-removable", "--yes")
    assert " MB written" in proc.stdout and "verified" not in proc.stdout
