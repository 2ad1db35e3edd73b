"""pifleet's map of what an image's filesystems use: the same from a stream cut anywhere as
from reading the image where the maps are, and conservative wherever it cannot know."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import flashimages as images
import pytest

from pifleet.flash.maps import HEAD, Usage

Image = Callable[[str], Path]

LAYOUTS = ["raspios_bookworm", "old_layout", "hypriot_17", "many_groups", "ext_1k_blocks",
           "ext2_plain", "ext3_gpt", "ext4_meta_bg"]


def _scan(path: Path) -> Usage:
    fd = os.open(path, os.O_RDONLY)
    try:
        return Usage.scan(fd, path.stat().st_size)
    finally:
        os.close(fd)


def _stream(data: bytes, piece: int, size: int | None) -> list[tuple[int, int]]:
    usage = Usage(size)
    needed = []
    for at in range(0, len(data), piece):
        chunk = data[at: at + piece]
        usage.feed(at, chunk)
        needed += usage.needed(at, at + len(chunk))
    merged: list[tuple[int, int]] = []
    for start, end in needed:
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_stream_cut_anywhere_needs_what_the_scan_needs(image: Image, layout: str) -> None:
    path = image(layout)
    data = path.read_bytes()
    usage = _scan(path)
    expected = usage.needed(0, len(data))
    assert "?" not in usage.describe() and "other" not in usage.describe().split("@")[0]
    assert sum(e - s for s, e in expected) < len(data) * 0.9
    for piece, size in ((4 << 20, len(data)), ((1 << 20) + 7, None), (65535, len(data))):
        assert _stream(data, piece, size) == expected, (piece, size)


def test_the_first_mib_and_unknown_partitions_are_always_needed(image: Image) -> None:
    path = image("many_groups")
    layout = images.many_groups()
    usage = _scan(path)
    size = path.stat().st_size
    other = (layout.root_start + layout.root_size * images.MIB, size)
    needed = usage.needed(0, size)
    assert needed[0][0] == 0 and needed[0][1] >= HEAD
    assert any(s <= other[0] and other[1] <= e for s, e in needed)
    assert usage.describe() == "fat@4MiB ext@20MiB other@84MiB"


def test_a_truncated_image_ends_the_scan_and_needs_the_rest(image: Image, tmp_path: Path
                                                            ) -> None:
    short = tmp_path / "short.img"
    short.write_bytes(image("many_groups").read_bytes()[: 21 * images.MIB])
    size = images.many_groups().size
    fd = os.open(short, os.O_RDONLY)
    try:
        usage = Usage.scan(fd, size)
    finally:
        os.close(fd)
    # Group 4 (8 MiB) has its bitmap 32 MiB into the root filesystem, past the end: needed
    # whole. (Group 5 is BLOCK_UNINIT: its descriptor, which was read, says it all.)
    start = images.many_groups().root_start + 32 * images.MIB
    assert usage.needed(start, start + 8 * images.MIB) == [(start, start + 8 * images.MIB)]


def test_overlapping_partitions_make_everything_needed(image: Image, tmp_path: Path) -> None:
    bad = tmp_path / "overlap.img"
    data = bytearray(image("raspios_bookworm").read_bytes())
    # The second entry starts inside the first (sfdisk refuses to write such a table).
    data[446 + 16 + 8: 446 + 16 + 12] = (40960).to_bytes(4, "little")
    bad.write_bytes(bytes(data))
    size = bad.stat().st_size
    assert _scan(bad).needed(0, size) == [(0, size)]


def test_a_bare_filesystem_image_without_a_table(tmp_path: Path) -> None:
    bare = tmp_path / "root.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-F", str(bare), "32M"], check=True, capture_output=True)
    usage = _scan(bare)
    assert usage.describe() == "ext@0MiB"
    assert sum(e - s for s, e in usage.needed(0, bare.stat().st_size)) < 16 * images.MIB


def test_damaged_maps_never_break_the_reading(image: Image) -> None:
    """Bytes of the partition tables, superblocks, descriptors, bitmaps and FATs spoiled at
    random: the map is still made (conservative or odd, never an exception)."""
    import random

    rng = random.Random(7)
    for layout in ("many_groups", "ext3_gpt", "ext_1k_blocks"):
        data = bytearray(image(layout).read_bytes())
        size = len(data)
        spots = [0, 512, 1024] + [s for s, _, _ in _regions(image(layout))]
        for _ in range(25):
            spoiled = {}
            for _ in range(rng.randrange(1, 40)):
                at = min(rng.choice(spots) + rng.randrange(65536), size - 1)
                spoiled.setdefault(at, data[at])
                data[at] = rng.randrange(256)
            usage = Usage(size)
            view = memoryview(data)
            for at in range(0, size, 1 << 20):
                usage.feed(at, view[at: at + (1 << 20)])
                for start, end in usage.needed(at, min(at + (1 << 20), size)):
                    assert at <= start < end <= size
            view.release()
            for at, value in spoiled.items():
                data[at] = value


def _regions(path: Path) -> list[tuple[int, int, str]]:
    usage = _scan(path)
    return [(r.start, r.end, r.kind) for r in usage.table.regions or []]
