""".xz specifics: the index (size and blocks without decoding) and parallel block decoding.

An .xz file made with threads (`xz -T`, as image publishers do) is a run of independent
blocks, listed with their sizes in the index at the end of each stream. Each block can be
decoded on its own (wrapped as a one-block stream), so blocks are decoded on all cores in this
process (Python's lzma releases the GIL), and a block that lies wholly in space the image's
filesystems do not use is not decoded at all: images are mostly free space, and decoding a
run of zeros costs about as much CPU as decoding data.
"""

from __future__ import annotations

import lzma
import os
import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pifleet.errors import BadInput

CHUNK = 4 * 1024 * 1024
PARALLEL_BLOCK = 32 * 1024 * 1024  # larger blocks are decoded one at a time, piece by piece
IN_FLIGHT = 48 * 1024 * 1024  # decoded bytes held ahead of the writer (memory bound)


class CorruptStream(Exception):
    """The compressed data broke off or does not decode (found while writing).

    Raised for every container; defined here, the lowest module, and re-exported by compress.
    """


@dataclass(frozen=True)
class Block:
    """One .xz block: its stream's header, where it is in the file (`start`, `unpadded`
    bytes), and what it decodes to (`size` bytes at `offset` of the image)."""

    header: bytes
    start: int
    unpadded: int
    size: int
    offset: int


def index(path: Path) -> tuple[int | None, int]:
    """Uncompressed size and block count from the xz indexes, read from the end, no decoding."""
    found = blocks(path)
    return sum(b.size for b in found), len(found)


def blocks(path: Path) -> list[Block]:
    """Every block of every stream, in file order, from the indexes (no decoding).

    A file may hold several concatenated streams, with zero padding between them: each is
    found through its footer and index, walking backwards to the file's start.
    """
    streams: list[list[Block]] = []
    try:
        with path.open("rb") as handle:
            end = handle.seek(0, 2)
            while end > 0:
                end = _skip_padding(handle, end)
                if end == 0:
                    break
                stream, end = _stream_before(handle, end, path)
                streams.insert(0, stream)
    except OSError as exc:
        raise BadInput(f"{path}: corrupt xz file ({exc})") from exc
    if not streams:
        raise BadInput(f"{path}: corrupt xz file (no stream)")
    out, offset = [], 0
    for stream in streams:
        for block in stream:
            out.append(Block(block.header, block.start, block.unpadded, block.size, offset))
            offset += block.size
    return out


def _skip_padding(handle: BinaryIO, end: int) -> int:
    """Stream padding is zero bytes in groups of four: the offset before it."""
    while end >= 4:
        handle.seek(end - 4)
        if handle.read(4) != b"\0\0\0\0":
            break
        end -= 4
    return end


def _stream_before(handle: BinaryIO, end: int, path: Path) -> tuple[list[Block], int]:
    """The blocks of the stream that ends at `end`, and where the stream starts."""
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
    records = []
    try:
        count, pos = _varint(record, 1)
        compressed = 0
        for _ in range(count):
            unpadded, pos = _varint(record, pos)
            size, pos = _varint(record, pos)
            records.append((unpadded, size))
            compressed += (unpadded + 3) // 4 * 4
    except IndexError:
        raise corrupt from None
    start = end - 12 - backward - compressed - 12
    if start < 0:
        raise corrupt
    handle.seek(start)
    header = handle.read(12)
    if header[:6] != b"\xfd7zXZ\x00":
        raise corrupt
    found, at = [], start + 12
    for unpadded, size in records:
        found.append(Block(header, at, unpadded, size, 0))
        at += (unpadded + 3) // 4 * 4
    return found, start


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _one_block_stream(block: Block, data: bytes) -> list[bytes]:
    """`block` as a stream of its own, in three parts: its stream's header, the block, an index
    of one record with a footer (xz file format 1.0.4, sections 2.1 and 4)."""
    index = bytearray(b"\0" + _encode_varint(1) + _encode_varint(block.unpadded)
                      + _encode_varint(block.size))
    index += bytes(-len(index) % 4)
    index += struct.pack("<I", zlib.crc32(index))
    flags = block.header[6:8]
    backward = struct.pack("<I", len(index) // 4 - 1)
    footer = struct.pack("<I", zlib.crc32(backward + flags)) + backward + flags + b"YZ"
    return [block.header, data, bytes(index) + footer]


def _decode_block(fd: int, block: Block, path: Path) -> Iterator[bytes]:
    """One block's bytes in pieces of at most CHUNK; its check is verified by lzma."""
    padded = (block.unpadded + 3) // 4 * 4
    data = os.pread(fd, padded, block.start)
    if len(data) != padded:
        raise CorruptStream(f"{path}: xz data ends early: the file is truncated")
    decoder = lzma.LZMADecompressor(lzma.FORMAT_XZ)
    total = 0
    try:
        for part in _one_block_stream(block, data):
            while not decoder.eof:
                out = decoder.decompress(part, CHUNK)
                part = b""
                total += len(out)
                if out:
                    yield out
                elif decoder.needs_input:
                    break
    except lzma.LZMAError as exc:
        raise CorruptStream(f"{path}: corrupt xz data ({exc})") from exc
    if not decoder.eof or total != block.size:
        raise CorruptStream(f"{path}: corrupt xz data (a block decodes to {total} bytes, "
                            f"its index says {block.size})")


def _decode_all(fd: int, block: Block, path: Path) -> list[bytes]:
    return list(_decode_block(fd, block, path))


def decode_blocks(path: Path, found: list[Block],
                  skip: Callable[[int, int], bool] | None = None,
                  workers: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of the image, decoded a block per core, in order.

    `skip(start, end)` is asked about each block just before it is decoded; a block it says
    is not needed is not decoded, and nothing is yielded for it. The last piece ends where
    the image ends (an empty one if the last blocks were skipped).
    """
    workers = workers or max(1, min(os.cpu_count() or 1, 4))
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    pool = ThreadPoolExecutor(workers, thread_name_prefix="pifleet-xz")
    pending: deque[tuple[Block, Future[list[bytes]] | None]] = deque()
    upcoming = iter(found)
    end = 0
    try:
        while True:
            while len(pending) < workers and (
                    not pending or sum(b.size for b, _ in pending) < IN_FLIGHT):
                block = next(upcoming, None)
                if block is None:
                    break
                end = block.offset + block.size
                if skip is not None and skip(block.offset, end):
                    continue
                big = block.size > PARALLEL_BLOCK
                pending.append((block, None if big else pool.submit(_decode_all, fd, block,
                                                                     path)))
            if not pending:
                break
            block, future = pending.popleft()
            offset = block.offset
            for piece in future.result() if future else _decode_block(fd, block, path):
                yield offset, piece
                offset += len(piece)
        yield end, b""  # where the image ends, also when its last blocks were skipped
    finally:
        for _, future in pending:
            if future:
                future.cancel()
        pool.shutdown(wait=True)
        os.close(fd)
