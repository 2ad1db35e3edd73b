""".xz specifics: the index (size and block count without decoding) and parallel decoding."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pifleet.errors import BadInput

F_SETPIPE_SZ = 1031  # Linux


class CorruptStream(Exception):
    """The compressed data broke off or does not decode (found while writing).

    Raised for every container; defined here, the lowest module, and re-exported by compress.
    """


def index(path: Path) -> tuple[int | None, int]:
    """Uncompressed size and block count from the xz indexes, read from the end, no decoding.

    A file may hold several concatenated streams, with zero padding between them: each is
    found through its footer and index, walking backwards to the file's start.
    """
    total = count = 0
    try:
        with path.open("rb") as handle:
            end = handle.seek(0, 2)
            while end > 0:
                end = _skip_padding(handle, end)
                if end == 0:
                    break
                size, blocks, end = _stream_before(handle, end, path)
                total += size
                count += blocks
    except OSError as exc:
        raise BadInput(f"{path}: corrupt xz file ({exc})") from exc
    if count == 0:
        raise BadInput(f"{path}: corrupt xz file (no stream)")
    return total, count


def _skip_padding(handle: BinaryIO, end: int) -> int:
    """Stream padding is zero bytes in groups of four: the offset before it."""
    while end >= 4:
        handle.seek(end - 4)
        if handle.read(4) != b"\0\0\0\0":
            break
        end -= 4
    return end


def _stream_before(handle: BinaryIO, end: int, path: Path) -> tuple[int, int, int]:
    """(uncompressed size, blocks, start offset) of the stream that ends at `end`."""
    corrupt = BadInput(f"{path}: corrupt xz file (bad stream footer or index)")
    if end < 24:
        raise corrupt
    handle.seek(end - 12)
    footer = handle.read(12)
    if footer[10:12] != b"YZ":
        raise corrupt
    backward = (struct.unpack("<I", footer[4:8])[0] + 1) * 4
    if end - 12 - backward < 12:
        raise corrupt
    handle.seek(end - 12 - backward)
    record = handle.read(backward)
    if not record or record[0] != 0:
        raise corrupt
    try:
        count, pos = _varint(record, 1)
        total = compressed = 0
        for _ in range(count):
            unpadded, pos = _varint(record, pos)
            size, pos = _varint(record, pos)
            compressed += (unpadded + 3) // 4 * 4
            total += size
    except IndexError:
        raise corrupt from None
    start = end - 12 - backward - compressed - 12
    if start < 0:
        raise corrupt
    handle.seek(start)
    if handle.read(6) != b"\xfd7zXZ\x00":
        raise corrupt
    return total, count, start


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def threads_available() -> bool:
    """Whether the xz tool can decode blocks on several cores here (xz 5.4 or later)."""
    if (os.cpu_count() or 1) < 2 or shutil.which("xz") is None:
        return False
    try:
        out = subprocess.run(["xz", "--robot", "--version"], capture_output=True, text=True,
                             check=False).stdout
    except OSError:
        return False
    match = re.search(r"XZ_VERSION=(\d+)", out)
    return match is not None and int(match.group(1)) >= 50040002  # 5.4.0 stable


FULL_BLOCK = 4 * 1024 * 1024


def _full_blocks(fd: int, size: int) -> Iterator[bytes]:
    """Read a pipe in whole blocks of `size` (the last may be shorter), as dd's fullblock:
    a pipe hands out at most its buffer per read, and each block costs a zero check, a queue
    hand-off and a device write downstream, so fewer, larger blocks are cheaper.
    """
    buffer = bytearray(size)
    view = memoryview(buffer)
    while True:
        filled = 0
        while filled < size:
            got = os.readv(fd, [view[filled:]])
            if got == 0:
                break
            filled += got
        if filled:
            yield bytes(view[:filled])
        if filled < size:
            return


def decode_threaded(path: Path) -> Iterator[bytes]:
    """Multi-block .xz through `xz -dc -T0`: it decodes blocks in parallel, which Python's
    single-threaded lzma cannot; the stream's integrity checks are still verified by xz.
    """
    proc = subprocess.Popen(["xz", "-dc", "-T0", "--", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=0)
    assert proc.stdout is not None and proc.stderr is not None
    fd = proc.stdout.fileno()
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, F_SETPIPE_SZ, 1024 * 1024)  # fewer, larger reads from the pipe
    try:
        yield from _full_blocks(fd, FULL_BLOCK)
        error = proc.stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0:
            raise CorruptStream(f"{path}: corrupt xz data ({error or 'xz failed'})")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
