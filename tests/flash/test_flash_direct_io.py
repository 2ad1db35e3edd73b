"""Direct (O_DIRECT) writes of the image body to a device, with buffered edges (root)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from pifleet.flash import diskio

Loop = Callable[..., str]
MIB = 1024 * 1024


def _open(device: str) -> diskio.Sink:
    return diskio.Sink(os.open(device, os.O_RDWR), Path(device), is_device=True)


def test_aligned_writes_go_direct_and_unaligned_ones_still_land(loop: Loop) -> None:
    device = loop(16, fill=b"\xaa" * (16 * MIB))
    sink = _open(device)
    try:
        assert diskio.start_direct(sink)
        assert fcntl.fcntl(sink.fd, fcntl.F_GETFL) & os.O_DIRECT
        aligned = os.urandom(5 * MIB)  # more than one staging block
        odd = os.urandom(10_000)  # neither offset nor length aligned
        diskio.write(sink, aligned, MIB)
        diskio.write(sink, odd, 7 * MIB + 123)
        diskio.write(sink, aligned[:MIB], 8 * MIB)
        assert diskio.zero_out(sink, 10 * MIB + 512, 2 * MIB)  # unaligned edges, buffered
        assert sink.direct, "an aligned write fell back to buffered"
        os.fsync(sink.fd)
    finally:
        diskio.stop_direct(sink)
        assert not fcntl.fcntl(sink.fd, fcntl.F_GETFL) & os.O_DIRECT
        os.close(sink.fd)
    with open(device, "rb") as back:
        data = back.read()
    assert data[:MIB] == b"\xaa" * MIB
    assert data[MIB: 6 * MIB] == aligned
    assert data[6 * MIB: 7 * MIB + 123] == b"\xaa" * (MIB + 123)
    assert data[7 * MIB + 123: 7 * MIB + 10_123] == odd
    assert data[8 * MIB: 9 * MIB] == aligned[:MIB]
    assert data[10 * MIB: 10 * MIB + 512] == b"\xaa" * 512
    assert data[10 * MIB + 512: 12 * MIB + 512] == bytes(2 * MIB)
    assert data[12 * MIB + 512:] == b"\xaa" * (len(data) - 12 * MIB - 512)


def test_regular_files_stay_buffered(tmp_path: Path) -> None:
    path = tmp_path / "out.img"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    sink = diskio.Sink(fd, path, is_device=False, sparse=True)
    try:
        assert not diskio.start_direct(sink)
        diskio.write(sink, b"x" * 4096, 4096)
    finally:
        diskio.stop_direct(sink)
        os.close(fd)
    assert path.read_bytes() == bytes(4096) + b"x" * 4096
