"""MBR and bmap parsing."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

import pytest

from pifleet.errors import BadInput
from pifleet.flash import bmap, mbr


def sector(entries: list[tuple[int, int, int]]) -> bytes:
    data = bytearray(512)
    for index, (ptype, start, count) in enumerate(entries):
        entry = struct.pack("<B3sB3sII", 0, b"\0\0\0", ptype, b"\0\0\0", start, count)
        data[446 + 16 * index: 462 + 16 * index] = entry
    data[510:512] = b"\x55\xaa"
    return bytes(data)


def test_mbr_finds_fat_boot_partition() -> None:
    head = sector([(0x0C, 16384, 1048576), (0x83, 1064960, 4000000)])
    parts = mbr.parse(head)
    assert [p.number for p in parts] == [1, 2]
    boot = mbr.boot_partition(head)
    assert boot is not None
    assert (boot.start, boot.size) == (8 * 1024 * 1024, 512 * 1024 * 1024)
    assert mbr.first_data_offset(head) == 8 * 1024 * 1024


def test_mbr_without_signature_or_fat() -> None:
    assert mbr.parse(bytes(512)) == []
    assert mbr.boot_partition(sector([(0x83, 2048, 100)])) is None


BMAP = """<?xml version="1.0" ?>
<bmap version="2.0">
    <ImageSize> 10000 </ImageSize>
    <BlockSize> 4096 </BlockSize>
    <BlocksCount> 3 </BlocksCount>
    <MappedBlocksCount> 2 </MappedBlocksCount>
    <ChecksumType> sha256 </ChecksumType>
    <BmapFileChecksum> 00 </BmapFileChecksum>
    <BlockMap>
        <Range chksum="aa"> 0 </Range>
        <Range chksum="bb"> 2 </Range>
    </BlockMap>
</bmap>
"""


def test_bmap_parses_ranges_and_clips_the_last_block() -> None:
    parsed = bmap.parse(ET.fromstring(BMAP))
    assert parsed.algorithm == "sha256"
    assert parsed.byte_ranges() == [(0, 4096, "aa"), (8192, 10000, "bb")]
    assert parsed.mapped_bytes == 4096 + 1808


@pytest.mark.parametrize(("old", "new"), [
    ('version="2.0"', 'version="9.0"'),
    ("<BlocksCount> 3 ", "<BlocksCount> 4 "),
    ("<MappedBlocksCount> 2 ", "<MappedBlocksCount> 3 "),
    ("> 2 </Range>", "> 7 </Range>"),
    ("> 2 </Range>", "> 0 </Range>"),
    ("sha256 </ChecksumType>", "md5 </ChecksumType>"),
])
def test_bmap_inconsistencies_are_bad_input(old: str, new: str) -> None:
    with pytest.raises(BadInput):
        bmap.parse(ET.fromstring(BMAP.replace(old, new)))


def test_unreadable_bmap_names_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.bmap"
    path.write_text("<bmap")
    with pytest.raises(BadInput, match=r"x\.bmap"):
        bmap.load(path)


def test_catalog_entries_are_well_formed() -> None:
    from pifleet.flash import catalog

    names = {e.name for e in catalog.CATALOG}
    assert {"hypriotos-1.7.1", "raspios-lite-arm64", "ubuntu-server-24.04-arm64"} <= names
    for entry in catalog.CATALOG:
        assert entry.url.startswith("https://")
        assert entry.sha256 or entry.sha256_url
        if entry.sha256:
            assert len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0
    assert catalog.get("raspios").name == "raspios-lite-arm64"
    with pytest.raises(BadInput, match=r"hypriotos-1\.7\.1"):
        catalog.get("nope")
