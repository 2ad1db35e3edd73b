"""Which clusters of a FAT12/16/32 filesystem are in use, from its first allocation table.

The reserved sectors (boot sector, FSInfo, backup boot sector), every copy of the FAT and the
FAT12/16 root directory are always needed; a data cluster is needed unless its FAT entry is
0 (free). The tables precede the data, so a stream has them before the clusters they describe.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pifleet.flash.maps.ranges import Range, subtract, union, zero_entries
from pifleet.flash.maps.reader import Reader


@dataclass(frozen=True)
class Geometry:
    """A FAT volume's layout from its boot sector, in bytes from the volume's start."""

    sector: int
    cluster: int
    fat_start: int
    fat_size: int  # one copy
    data_start: int
    clusters: int
    bits: int  # 12, 16 or 32
    end: int  # of the volume (total sectors)


def geometry(boot: bytes) -> Geometry | None:
    """The layout of a FAT boot sector, or None if `boot` is not one."""
    if len(boot) < 512 or boot[510:512] != b"\x55\xaa" or boot[0] not in (0xEB, 0xE9):
        return None
    sector, per_cluster, reserved, fats, root_entries, total16 = struct.unpack_from(
        "<HBHBHH", boot, 11)
    fat16, total32, fat32 = (struct.unpack_from("<H", boot, 22)[0],
                             struct.unpack_from("<I", boot, 32)[0],
                             struct.unpack_from("<I", boot, 36)[0])
    fat_sectors = fat16 or fat32
    total = total16 or total32
    if (sector not in (512, 1024, 2048, 4096) or per_cluster == 0
            or per_cluster & (per_cluster - 1) or reserved == 0 or fats == 0
            or fat_sectors == 0 or total == 0):
        return None
    root_sectors = -(-root_entries * 32 // sector)
    data_sector = reserved + fats * fat_sectors + root_sectors
    if data_sector >= total:
        return None
    clusters = (total - data_sector) // per_cluster
    # The FAT type follows from the cluster count alone (Microsoft's FAT specification).
    bits = 12 if clusters < 4085 else 16 if clusters < 65525 else 32
    if (clusters + 2) * bits > fat_sectors * sector * 8:
        return None  # the table cannot describe every cluster: not a volume we understand
    return Geometry(sector, per_cluster * sector, reserved * sector, fat_sectors * sector,
                    data_sector * sector, clusters, bits, total * sector)


MAX_TABLE = 64 * 1024 * 1024  # held in memory until complete: more is not a card's volume


class FatMap(Reader):
    """The allocation of one FAT volume at byte `start` of the image (`size` bytes)."""

    def __init__(self, start: int, size: int, boot: bytes) -> None:
        super().__init__()
        self.start, self.size = start, size
        self.layout = geometry(boot)
        self.free: list[Range] | None = None
        table = -(-(self.layout.clusters + 2) * self.layout.bits // 8) if self.layout else 0
        if self.layout is not None and self.layout.end <= size and table <= MAX_TABLE:
            first = start + self.layout.fat_start
            self.want(first, first + table, "fat")
        else:
            self.layout = None

    def take(self, start: int, data: bytes, what: str | int) -> None:
        """The first FAT: its free entries become free byte ranges of the data area."""
        assert self.layout is not None
        data_start = self.start + self.layout.data_start
        cluster = self.layout.cluster
        self.free = [(data_start + (first - 2) * cluster, data_start + (end - 2) * cluster)
                     for first, end in _free_entries(data, self.layout)]
        # Sectors after the last whole cluster belong to the volume but never hold data.
        tail = data_start + self.layout.clusters * cluster
        if tail < self.start + self.layout.end:
            self.free = union([*self.free, (tail, self.start + self.layout.end)])

    def needed(self, start: int, end: int) -> list[Range]:
        """The parts of [start, end) (inside this volume's partition) that must be written."""
        if self.layout is None or self.free is None:
            return [(start, end)]
        return subtract(start, end, self.free)


def _free_entries(table: bytes, layout: Geometry) -> list[Range]:
    """Runs of free clusters [first, end) (cluster numbers, from 2)."""
    last = layout.clusters + 2
    if layout.bits == 12:
        runs: list[Range] = []
        for cluster in range(2, last):
            at = cluster * 3 // 2
            pair = table[at] | table[at + 1] << 8
            entry = pair >> 4 if cluster & 1 else pair & 0xFFF
            if entry == 0:
                if runs and runs[-1][1] == cluster:
                    runs[-1] = (runs[-1][0], cluster + 1)
                else:
                    runs.append((cluster, cluster + 1))
        return runs
    width = layout.bits // 8
    if width == 4:
        # FAT32 entries are 28 bits: the top four are reserved and may be set on a free one.
        masked = bytearray(table)
        masked[3::4] = bytes(masked[3::4]).translate(_LOW_NIBBLE)
        table = bytes(masked)
    return [(max(first, 2), min(end, last)) for first, end in zero_entries(table, width)
            if min(end, last) > max(first, 2)]


_LOW_NIBBLE = bytes(b & 0x0F for b in range(256))
