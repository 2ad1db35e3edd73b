"""The MBR partition table of a Pi image: enough to find the FAT boot partition."""

from __future__ import annotations

import struct
from dataclasses import dataclass

SECTOR = 512
FAT_TYPES = {0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E}
GPT_PROTECTIVE = 0xEE


@dataclass(frozen=True)
class Partition:
    """One primary partition: its number (1-4), type byte, start and length in bytes."""

    number: int
    type: int
    start: int
    size: int
    bootable: bool

    @property
    def is_fat(self) -> bool:
        """Whether the type byte says FAT (12/16/32, CHS or LBA)."""
        return self.type in FAT_TYPES


def parse(sector0: bytes) -> list[Partition]:
    """The primary partitions of an MBR (empty list if `sector0` carries no MBR signature)."""
    if len(sector0) < SECTOR or sector0[510:512] != b"\x55\xaa":
        return []
    parts = []
    for index in range(4):
        entry = sector0[446 + 16 * index: 446 + 16 * (index + 1)]
        status, ptype = entry[0], entry[4]
        lba, count = struct.unpack("<II", entry[8:16])
        if ptype and count:
            parts.append(Partition(index + 1, ptype, lba * SECTOR, count * SECTOR,
                                   status == 0x80))
    return parts


def boot_partition(sector0: bytes) -> Partition | None:
    """The first FAT partition: where a Pi's firmware, cmdline.txt and first-boot files live."""
    return next((p for p in parse(sector0) if p.is_fat), None)


def first_data_offset(sector0: bytes) -> int | None:
    """Where the first partition begins, in bytes (None without an MBR)."""
    parts = parse(sector0)
    return min(p.start for p in parts) if parts else None
