"""Low-level writes to a card or an image file: whole writes, zeroing, steady flushing.

Linux specifics (BLKZEROOUT, sync_file_range, glibc's allocator) are used when present and
fall back to plain writes and fdatasync elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SYNC_STEP = 256 * 1024 * 1024
BLKZEROOUT = 0x127F  # _IO(0x12, 127), Linux
ALIGN = 4096  # direct writes: offset, length and buffer aligned to this (any sector size <= 4K)
DIRECT_BLOCK = 4 * 1024 * 1024


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
    direct: bool = False  # O_DIRECT is set on fd (see start_direct)
    staging: mmap.mmap | None = None  # page-aligned buffer for direct writes


def start_direct(sink: Sink) -> bool:
    """Write the body of a device past the page cache (O_DIRECT), where the kernel allows it.

    Buffered writes copy every byte into page-cache pages the card then has to drain, and the
    cache fills with gigabytes nobody reads again. Measured here into a loop device, 544 MiB in
    4 MiB writes: 1.3-2.0 s buffered (most of it in the copy into freshly allocated cache
    pages), 0.37-0.43 s direct. Raspberry Pi Imager writes cards this way too.
    """
    if not sink.is_device or not hasattr(os, "O_DIRECT"):
        return False
    try:
        flags = fcntl.fcntl(sink.fd, fcntl.F_GETFL)
        fcntl.fcntl(sink.fd, fcntl.F_SETFL, flags | os.O_DIRECT)
    except OSError:
        return False
    sink.direct = True
    sink.staging = mmap.mmap(-1, DIRECT_BLOCK)  # anonymous maps are page-aligned
    return True


def stop_direct(sink: Sink) -> None:
    """Back to buffered writes (the partition table and first-boot files are small)."""
    if sink.direct:
        sink.direct = False
        flags = fcntl.fcntl(sink.fd, fcntl.F_GETFL)
        fcntl.fcntl(sink.fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
    if sink.staging is not None:
        # A traceback on its way up may still hold a view of the buffer: then the map is
        # freed with the last view instead of now.
        with contextlib.suppress(BufferError):
            sink.staging.close()
        sink.staging = None


def write(sink: Sink, data: bytes | memoryview, offset: int) -> None:
    """Write `data` at `offset`: direct when aligned and allowed, else buffered with steady
    flushing."""
    if sink.direct and offset % ALIGN == 0 and len(data) % ALIGN == 0:
        try:
            _write_direct(sink, data, offset)
            return
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            stop_direct(sink)  # a sector size above 4K, or a driver without direct I/O
    _write_buffered(sink, data, offset)
    sink.since_sync += len(data)
    if sink.since_sync >= SYNC_STEP:
        flush_step(sink, offset + len(data))


def _write_direct(sink: Sink, data: bytes | memoryview, offset: int) -> None:
    assert sink.staging is not None
    view = memoryview(data)
    staging = memoryview(sink.staging)
    try:
        for start in range(0, len(view), DIRECT_BLOCK):
            piece = view[start: start + DIRECT_BLOCK]
            staging[: len(piece)] = piece
            pwrite_all(sink.fd, staging[: len(piece)], offset + start)
    finally:
        staging.release()


def _write_buffered(sink: Sink, data: bytes | memoryview, offset: int) -> None:
    """A plain write, with O_DIRECT lifted for it if set (unaligned pieces: image edges)."""
    if not sink.direct:
        pwrite_all(sink.fd, data, offset)
        return
    flags = fcntl.fcntl(sink.fd, fcntl.F_GETFL)
    fcntl.fcntl(sink.fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
    try:
        pwrite_all(sink.fd, data, offset)
        # The kernel writes and drops cached pages before a direct write over them, but
        # flushing here keeps the next direct writes from waiting on it.
        os.fdatasync(sink.fd)
    finally:
        fcntl.fcntl(sink.fd, fcntl.F_SETFL, flags)


def release_memory() -> None:
    """Hand freed heap memory back to the system (glibc keeps it, see tune_allocator): the
    read-back that follows the write then does not add its buffers on top."""
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).malloc_trim(0)


def tune_allocator() -> None:
    """Keep 4 MiB buffers on the heap instead of a fresh mmap for each one, in one arena.

    glibc maps each large allocation separately and unmaps it on free, so every chunk paid
    for 1024 page faults: measured here, reading a 1 GiB image took 2.8 s instead of 1.7 s.
    One arena: buffers made by the decoding threads and freed by the writer otherwise stay in
    each thread's own arena (peak 101 MB for the benchmark's .xz with verify, 77 MB in one
    arena, as fast: there are a few allocations a second).
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 64 * 1024 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 * 1024 * 1024)  # M_TRIM_THRESHOLD
        libc.mallopt(-8, 1)  # M_ARENA_MAX
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
            _write_buffered(sink, bytes(start - offset), offset)
        fcntl.ioctl(sink.fd, BLKZEROOUT, struct.pack("QQ", start, end - start))
        if end < offset + length:
            _write_buffered(sink, bytes(offset + length - end), end)
    except OSError:
        sink.zeroout = False
        return False
    return True


def read_into(sink: Sink, buffer: mmap.mmap, offset: int, length: int) -> memoryview:
    """`length` bytes at `offset` into `buffer` (page-aligned, at least `length` + 2 pages).

    A device opened for direct I/O (`start_direct`) is read past the page cache: the read is
    widened to whole pages and the wanted part returned, so nothing comes from memory the
    kernel kept. Elsewhere a plain read.
    """
    view = memoryview(buffer)
    lo = offset // ALIGN * ALIGN if sink.direct else offset
    hi = -(-(offset + length) // ALIGN) * ALIGN if sink.direct else offset + length
    done = 0
    while done < hi - lo:
        got = os.preadv(sink.fd, [view[done: hi - lo]], lo + done)
        if got <= 0:
            break
        done += got
    start = offset - lo
    return view[start: min(start + length, done)]


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """pwrite until everything is written; ENOSPC as an OSError when the target is full."""
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, offset)
        if done <= 0:
            raise OSError(28, "no space left on the target")
        view = view[done:]
        offset += done
