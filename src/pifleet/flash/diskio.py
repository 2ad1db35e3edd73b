"""Low-level writes to a card or an image file: whole writes, zeroing, steady flushing.

Linux specifics (BLKZEROOUT, sync_file_range, glibc's allocator) are used when present and
fall back to plain writes and fdatasync elsewhere.
"""

from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SYNC_STEP = 256 * 1024 * 1024
BLKZEROOUT = 0x127F  # _IO(0x12, 127), Linux


@dataclass
class Sink:
    """An opened target. `sparse`: a fresh regular file, where zero blocks may be skipped."""

    fd: int
    path: Path
    is_device: bool
    sparse: bool = False
    since_sync: int = 0
    synced_to: int = 0
    pending_sync: tuple[int, int] | None = None
    zeroout: bool = True  # try BLKZEROOUT for zero blocks on a device (off after a refusal)


def tune_allocator() -> None:
    """Keep 4 MiB buffers on the heap instead of a fresh mmap for each one.

    glibc maps each large allocation separately and unmaps it on free, so every chunk paid
    for 1024 page faults: measured here, reading a 1 GiB image took 2.8 s instead of 1.7 s.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 64 * 1024 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 * 1024 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def flush_step(sink: Sink, upto: int) -> None:
    """Steady flushing, so gigabytes do not pile up in the page cache for a final fsync that
    stalls for minutes with no progress to show.

    On Linux the step just written is handed to writeback without waiting, and only the step
    before it is waited for: the card keeps writing while the next step is decompressed. Elsewhere
    a plain fdatasync.
    """
    start = sink.synced_to
    sink.since_sync = 0
    sink.synced_to = upto
    if _SYNC_FILE_RANGE is None:
        os.fdatasync(sink.fd)
        return
    if sink.pending_sync is not None:
        before, after = sink.pending_sync
        _SYNC_FILE_RANGE(sink.fd, before, after - before, 1 | 2 | 4)  # wait, write, wait
    _SYNC_FILE_RANGE(sink.fd, start, upto - start, 2)  # start writeback, do not wait
    sink.pending_sync = (start, upto)


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_SYNC_FILE_RANGE = _load_sync_file_range()


def zero_out(sink: Sink, offset: int, length: int) -> bool:
    """Zero a device range with BLKZEROOUT; False if the kernel refuses (then plain writes).

    The kernel guarantees the range reads back as zeros: it uses the device's write-zeroes
    command where there is one and writes zero pages itself otherwise, so this is safe on a
    used card, unlike skipping zero blocks (facts.md section 6).
    """
    if not sink.is_device or length < 1024 * 1024:
        return False
    start = -(-offset // 4096) * 4096
    end = (offset + length) // 4096 * 4096
    try:
        if start > offset:
            pwrite_all(sink.fd, bytes(start - offset), offset)
        fcntl.ioctl(sink.fd, BLKZEROOUT, struct.pack("QQ", start, end - start))
        if end < offset + length:
            pwrite_all(sink.fd, bytes(offset + length - end), end)
    except OSError:
        sink.zeroout = False
        return False
    return True


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, offset)
        if done <= 0:
            raise OSError(28, "no space left on the target")
        view = view[done:]
        offset += done
