"""Image containers and compressions: recognised by their magic bytes, decompressed as a stream.

The file name is only a hint for messages; what a file *is* comes from its first bytes, so a
renamed or extension-less download still works and a corrupt one is named as such.
"""

from __future__ import annotations

import bz2
import lzma
import os
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pifleet.errors import BadInput
from pifleet.flash import xz
from pifleet.flash.xz import CorruptStream

CHUNK = 4 * 1024 * 1024

MAGICS: list[tuple[bytes, str]] = [
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x1f\x8b", "gz"),
    (b"BZh", "bz2"),
    (b"\x28\xb5\x2f\xfd", "zst"),
    (b"PK\x03\x04", "zip"),
]
IMAGE_SUFFIXES = (".img", ".raw", ".bin", ".iso")


def sniff(path: Path) -> str:
    """The container of `path`: xz, gz, bz2, zst, zip or raw."""
    with path.open("rb") as handle:
        head = handle.read(8)
    for magic, kind in MAGICS:
        if head.startswith(magic):
            return kind
    return "raw"


@dataclass
class ImageInfo:
    """What is known about the raw image inside a file before decompressing it."""

    kind: str
    size: int | None  # raw image size in bytes, when the container records it
    member: str | None = None  # the image's name inside a zip
    blocks: int = 1  # independently compressed blocks (xz): more than one can decode in parallel


def inspect(path: Path) -> ImageInfo:
    """Identify the container and, where cheap, the raw image size; BadInput if unusable."""
    if not path.is_file():
        raise BadInput(f"{path}: no such image file")
    kind = sniff(path)
    if kind == "raw":
        return ImageInfo(kind, path.stat().st_size)
    if kind == "zip":
        member = _zip_member(path)
        return ImageInfo(kind, member.file_size, member.filename)
    if kind == "xz":
        size, blocks = xz.index(path)
        return ImageInfo(kind, size, blocks=blocks)
    if kind == "zst":
        return ImageInfo(kind, _zst_size(path))
    return ImageInfo(kind, None)


def _zip_member(path: Path) -> zipfile.ZipInfo:
    try:
        with zipfile.ZipFile(path) as archive:
            files = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadInput(f"{path}: not a readable zip archive ({exc})") from exc
    images = [m for m in files if m.filename.lower().endswith(IMAGE_SUFFIXES)]
    if not images and len(files) == 1:
        images = files
    if len(images) != 1:
        names = ", ".join(m.filename for m in images) or "none"
        raise BadInput(f"{path}: a zip must hold exactly one disk image; it holds "
                       f"{len(images)} ({names})")
    member = images[0]
    if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise BadInput(f"{path}: {member.filename} uses an unsupported zip compression "
                       f"(method {member.compress_type})")
    return member


def _zst_size(path: Path) -> int | None:
    import zstandard

    with path.open("rb") as handle:
        head = handle.read(18)
    try:
        params = zstandard.get_frame_parameters(head)
    except zstandard.ZstdError as exc:
        raise BadInput(f"{path}: corrupt zstd file ({exc})") from exc
    size = params.content_size
    return None if size in (0, zstandard.CONTENTSIZE_UNKNOWN) else int(size)


def chunks(path: Path, info: ImageInfo, size: int = CHUNK) -> Generator[bytes, None, None]:
    """The raw image, decompressed on the fly, in consecutive blocks of at most `size` bytes.

    Blocks are not re-cut to one size: that cost three extra copies of every byte. (A
    multi-block .xz is decoded by `pieces`, which can also skip blocks.)

    Raises CorruptStream when the data cannot be decoded or ends early.
    """
    if info.kind == "raw":
        with path.open("rb") as handle:
            yield from _exact(_read_all(handle, size), size)
    elif info.kind == "zip":
        yield from _zip_chunks(path, info, size)
    elif info.kind == "zst":
        # The zstandard reader stops quietly at a truncated frame; the frame header's content
        # size (written by the zstd tool for files) is what tells a short stream apart.
        total = 0
        for block in _decode(path, info.kind, size):
            total += len(block)
            yield block
        if info.size is not None and total != info.size:
            raise CorruptStream(f"{path}: zst data ends early: {total} of {info.size} bytes")
    elif info.kind == "xz" and info.blocks > 1:
        yield from (data for _, data in xz.decode_blocks(path, xz.blocks(path)) if data)
    else:
        yield from _decode(path, info.kind, size)


def pieces(path: Path, info: ImageInfo, skip: Callable[[int, int], bool] | None = None
           ) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of the raw image in order. A multi-block .xz asks `skip(start, end)`
    before decoding each block and leaves out those it says are not needed (the last piece
    still ends where the image ends)."""
    if info.kind == "xz" and info.blocks > 1:
        yield from xz.decode_blocks(path, xz.blocks(path), skip)
    else:
        yield from with_offsets(chunks(path, info))


def with_offsets(blocks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) pairs for a contiguous stream of blocks."""
    offset = 0
    for block in blocks:
        yield offset, block
        offset += len(block)


def mapped_pieces(path: Path, ranges: list[tuple[int, int]], size: int = CHUNK
                  ) -> Iterator[tuple[int, bytes]]:
    """Only the given byte ranges of an uncompressed image, in pieces of at most `size` bytes.

    With a bmap, an uncompressed image need not be read where it is known to be zeros.
    """
    with path.open("rb") as handle:
        for start, end in ranges:
            offset = start
            while offset < end:
                data = os.pread(handle.fileno(), min(size, end - offset), offset)
                if not data:
                    raise CorruptStream(f"{path}: ends at byte {offset}, inside a bmap range")
                yield offset, data
                offset += len(data)


def _read_all(handle: BinaryIO, size: int) -> Iterator[bytes]:
    while block := handle.read(size):
        yield block


def _zip_chunks(path: Path, info: ImageInfo, size: int) -> Iterator[bytes]:
    try:
        with zipfile.ZipFile(path) as archive, archive.open(info.member or "") as member:
            while block := member.read(size):
                yield block
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise CorruptStream(f"{path}: corrupt zip data ({exc})") from exc


def _new_decoder(kind: str) -> Any:
    if kind == "xz":
        return lzma.LZMADecompressor()
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    return zlib.decompressobj(wbits=31)  # gzip header and trailer


def _decode(path: Path, kind: str, size: int) -> Iterator[bytes]:
    """Decode every concatenated stream (as `xz -d`, `gzip -d` do); fail on truncation.

    The decompressor is driven directly, with 1 MiB input blocks and output bounded by
    `max_length`: an image that is mostly zeros compresses a thousandfold, so unbounded calls
    could return gigabytes at once. (Reading through `lzma.open` instead was measured 1.7x
    slower here: it feeds 8 KiB at a time.)
    """
    if kind == "zst":
        yield from _decode_zst(path, size)
        return
    try:
        with path.open("rb") as source:
            decoder = _new_decoder(kind)
            pending = b""
            while True:
                if not pending and _needs_input(decoder):
                    pending = source.read(1024 * 1024)
                    if not pending:
                        break
                out, pending = _step(decoder, pending, size)
                if out:
                    yield out
                if decoder.eof:
                    pending = decoder.unused_data + pending
                    while True:
                        if kind == "xz":  # stream padding: zero bytes between and after
                            pending = pending.lstrip(b"\0")
                        if pending:
                            break
                        pending = source.read(1024 * 1024)
                        if not pending:
                            return  # finished cleanly
                    if not pending.strip(b"\0"):
                        return  # trailing zeros after the last gzip or bzip2 member
                    decoder = _new_decoder(kind)
            raise CorruptStream(f"{path}: {kind} data ends early: the file is truncated")
    except (lzma.LZMAError, OSError, zlib.error, EOFError, ValueError) as exc:
        raise CorruptStream(f"{path}: corrupt {kind} data ({exc or type(exc).__name__})") from exc


def _needs_input(decoder: Any) -> bool:
    if isinstance(decoder, lzma.LZMADecompressor | bz2.BZ2Decompressor):
        return bool(decoder.needs_input)
    return not decoder.unconsumed_tail


def _step(decoder: Any, data: bytes, size: int) -> tuple[bytes, bytes]:
    """Feed `data`, get at most `size` bytes out, and what input is left for the next call."""
    if isinstance(decoder, lzma.LZMADecompressor | bz2.BZ2Decompressor):
        return decoder.decompress(data, size), b""
    if not data:
        data = decoder.unconsumed_tail
    out = decoder.decompress(data, size)
    return out, decoder.unconsumed_tail if not decoder.eof else b""


def _decode_zst(path: Path, size: int) -> Iterator[bytes]:
    import zstandard

    try:
        with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(
                raw, read_across_frames=True) as reader:
            while block := reader.read(size):
                yield block
    except zstandard.ZstdError as exc:
        raise CorruptStream(f"{path}: corrupt zst data ({exc})") from exc


def _exact(blocks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """Re-cut a stream of blocks of any length into blocks of exactly `size` bytes."""
    buffer = bytearray()
    for block in blocks:
        if not buffer and len(block) == size:
            yield block
            continue
        buffer += block
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)
