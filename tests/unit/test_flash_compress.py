"""Containers recognised by content, sizes from their indexes, chunks cut exactly."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zipfile
from pathlib import Path

import pytest
import zstandard

from pifleet.errors import BadInput
from pifleet.flash.compress import CorruptStream, chunks, inspect, sniff

DATA = os.urandom(300_000) + bytes(700_000) + os.urandom(1234)


def write_all(tmp_path: Path) -> dict[str, Path]:
    files = {
        "raw": tmp_path / "a.img",
        "xz": tmp_path / "renamed.bin",  # content decides, not the name
        "gz": tmp_path / "a.img.gz",
        "bz2": tmp_path / "a.img.bz2",
        "zst": tmp_path / "a.img.zst",
        "zip": tmp_path / "a.zip",
    }
    files["raw"].write_bytes(DATA)
    files["xz"].write_bytes(lzma.compress(DATA))
    files["gz"].write_bytes(gzip.compress(DATA))
    files["bz2"].write_bytes(bz2.compress(DATA))
    files["zst"].write_bytes(zstandard.ZstdCompressor().compress(DATA))
    with zipfile.ZipFile(files["zip"], "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", "hello")
        archive.writestr("pi.img", DATA)
    return files


def test_every_container_streams_the_same_bytes(tmp_path: Path) -> None:
    for kind, path in write_all(tmp_path).items():
        assert sniff(path) == kind
        info = inspect(path)
        if kind in ("raw", "xz", "zst", "zip"):
            assert info.size == len(DATA), kind
        blocks = list(chunks(path, info, size=65536))
        assert all(len(b) <= 65536 for b in blocks)
        assert b"".join(blocks) == DATA, kind


def test_concatenated_xz_streams(tmp_path: Path) -> None:
    path = tmp_path / "two.xz"
    path.write_bytes(lzma.compress(DATA[:1000]) + lzma.compress(DATA[1000:]))
    assert b"".join(chunks(path, inspect(path))) == DATA


@pytest.mark.parametrize("kind", ["xz", "gz", "bz2", "zst"])
def test_truncated_stream_is_reported_while_writing(tmp_path: Path, kind: str) -> None:
    path = write_all(tmp_path)[kind]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises((CorruptStream, BadInput)):
        info = inspect(path)
        b"".join(chunks(path, info))


def test_zip_with_no_or_two_images_is_bad_input(tmp_path: Path) -> None:
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a.img", b"1")
        archive.writestr("b.img", b"2")
    with pytest.raises(BadInput, match="exactly one"):
        inspect(two)
    none = tmp_path / "none.zip"
    with zipfile.ZipFile(none, "w") as archive:
        archive.writestr("a.txt", b"1")
        archive.writestr("b.txt", b"2")
    with pytest.raises(BadInput, match="holds 0"):
        inspect(none)


def test_missing_and_corrupt_files_are_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such image"):
        inspect(tmp_path / "nope.img")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(BadInput, match=r"bad\.zip"):
        inspect(bad)


def _streams(tmp_path: Path) -> tuple[Path, bytes]:
    """Three .xz streams (different checks, zero padding between): three blocks."""
    import lzma
    import os

    parts = [os.urandom(300_000), bytes(700_000), b"text " * 100_000]
    data = (lzma.compress(parts[0], check=lzma.CHECK_CRC64) + bytes(4)
            + lzma.compress(parts[1], check=lzma.CHECK_SHA256)
            + lzma.compress(parts[2], check=lzma.CHECK_CRC32) + bytes(8))
    path = tmp_path / "three.img.xz"
    path.write_bytes(data)
    return path, b"".join(parts)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_xz_blocks_decode_in_order_on_any_number_of_cores(tmp_path: Path, workers: int
                                                           ) -> None:
    from pifleet.flash import xz

    path, raw = _streams(tmp_path)
    blocks = xz.blocks(path)
    assert [b.size for b in blocks] == [300_000, 700_000, 500_000]
    assert [b.offset for b in blocks] == [0, 300_000, 1_000_000]
    pieces = list(xz.decode_blocks(path, blocks, workers=workers))
    assert b"".join(p for _, p in pieces) == raw
    assert pieces[-1] == (len(raw), b"")
    assert all(offset == sum(len(p) for _, p in pieces[:i]) for i, (offset, _) in
               enumerate(pieces))


def test_xz_blocks_not_needed_are_not_decoded(tmp_path: Path) -> None:
    from pifleet.flash import xz

    path, raw = _streams(tmp_path)
    asked: list[tuple[int, int]] = []

    def skip(start: int, end: int) -> bool:
        asked.append((start, end))
        return start == 300_000  # the zeros

    pieces = list(xz.decode_blocks(path, xz.blocks(path), skip, workers=2))
    assert asked == [(0, 300_000), (300_000, 1_000_000), (1_000_000, 1_500_000)]
    assert [o for o, _ in pieces if _] == [0, 1_000_000]
    assert b"".join(p for _, p in pieces) == raw[:300_000] + raw[1_000_000:]
    assert pieces[-1] == (1_500_000, b"")


def test_a_corrupt_xz_block_is_reported(tmp_path: Path) -> None:
    from pifleet.flash import xz

    path, _ = _streams(tmp_path)
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF  # inside the first block's compressed data
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptStream, match="corrupt xz data"):
        list(xz.decode_blocks(path, xz.blocks(path)))
