"""Which bytes of an image must be written to a card: what its filesystems use.

Like a .bmap, but read from the image itself: the partition table (MBR, or GPT behind a
protective MBR) says where the partitions are, and each ext2/3/4 or FAT partition's own
allocation map says which of its blocks are in use. Needed are: the first MiB (partition
tables, boot code), every filesystem's metadata, the blocks in use (zero or not: on a used card
a zero block in use must be written, or stale data would be read back) and everything this
module does not understand (gaps between partitions, unknown partitions, the GPT's backup at
the end). Free blocks are left alone: no filesystem reads them (facts.md section 9).

Two ways in: `Usage.scan` reads an uncompressed image where the maps are, so only the needed
ranges need be read at all; a stream feeds every chunk as it passes (`feed`) and asks what of
it is needed (`needed`). Everything not known yet when its bytes pass is needed.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field

from pifleet.flash import mbr
from pifleet.flash.maps import extfs, fatfs
from pifleet.flash.maps.ranges import Range, align_out, union
from pifleet.flash.maps.reader import Reader, file_reader, scan

HEAD = 1024 * 1024  # always needed whole (written last by the writer)
ALIGN = 4096  # needed ranges are widened to this: whole pages for direct writes
EXTENDED = {0x05, 0x0F, 0x85}  # MBR extended partitions: written whole
PROBE = 2048  # bytes at a partition's start that tell ext from FAT


@dataclass
class Region:
    """A partition: its bytes, and once its start has been seen, what reads it."""

    start: int
    end: int
    kind: str = "?"  # "?" not seen yet, "ext", "fat", "other"
    reader: extfs.ExtMap | fatfs.FatMap | None = None

    def needed(self, start: int, end: int) -> list[Range]:
        """The parts of [start, end) to write: all of it until a reader knows better."""
        if self.reader is None:
            return [(start, end)]
        return self.reader.needed(start, end)


class Table(Reader):
    """The partition table: an MBR, or the GPT behind a protective MBR."""

    def __init__(self, size: int | None) -> None:
        super().__init__()
        self.size = size
        self.regions: list[Region] | None = None  # known once the table is read
        self.want(0, mbr.SECTOR, "mbr")

    def take(self, start: int, data: bytes, what: str | int) -> None:
        """Sector 0, a GPT header, its entries, or a partition's first bytes."""
        if what == "mbr":
            parts = mbr.parse(data)
            if any(p.type == mbr.GPT_PROTECTIVE for p in parts):
                self.want(mbr.SECTOR, 2 * mbr.SECTOR, "gpt")
            elif parts:
                self._found([(p.start, p.start + p.size, p.type in EXTENDED) for p in parts])
            else:
                # No partition table: a bare filesystem image, or something unknown.
                self._found([(0, self.size or 0, False)] if self.size else [])
        elif what == "gpt":
            if data[:8] != b"EFI PART":
                self._found([])
                return
            table_lba, count, entry_size = struct.unpack_from("<QII", data, 72)
            if not 128 <= entry_size <= 4096 or count > 4096:
                self._found([])
                return
            at = table_lba * mbr.SECTOR
            self.want(at, at + count * entry_size, f"entries:{entry_size}")
        elif isinstance(what, str) and what.startswith("probe:"):
            self._probe(self.regions[int(what.split(":")[1])] if self.regions else None, data)
        elif isinstance(what, str) and what.startswith("entries:"):
            size = int(what.split(":")[1])
            found = []
            for at in range(0, len(data), size):
                kind = data[at: at + 16]
                first, last = struct.unpack_from("<QQ", data, at + 32)
                if kind != bytes(16) and last >= first:
                    found.append((first * mbr.SECTOR, (last + 1) * mbr.SECTOR, False))
            self._found(found)

    def _found(self, parts: list[tuple[int, int, bool]]) -> None:
        regions = sorted((Region(s, min(e, self.size) if self.size else e,
                                 "other" if whole else "?")
                          for s, e, whole in parts), key=lambda r: r.start)
        regions = [r for r in regions if r.end > r.start]
        if any(b.start < a.end for a, b in itertools.pairwise(regions)):
            regions = []  # overlapping partitions: nothing is skipped anywhere
        self.regions = regions
        for index, region in enumerate(regions):
            if region.kind == "?":
                self.want(region.start, min(region.start + PROBE, region.end), f"probe:{index}")

    @staticmethod
    def _probe(region: Region | None, head: bytes) -> None:
        """Tell what a partition holds from its first bytes."""
        if region is None:
            return
        size = region.end - region.start
        if extfs.is_ext(head):
            region.kind, region.reader = "ext", extfs.ExtMap(region.start, size)
        elif fatfs.geometry(head) is not None:
            region.kind, region.reader = "fat", fatfs.FatMap(region.start, size, head)
        else:
            region.kind = "other"


@dataclass
class Usage:
    """What an image needs written, learnt from its partition table and filesystems."""

    size: int | None
    table: Table = field(init=False)

    def __post_init__(self) -> None:
        self.table = Table(self.size)

    @classmethod
    def scan(cls, fd: int, size: int) -> Usage:
        """Read an uncompressed image's maps where they are (a few MiB at most)."""
        usage = cls(size)
        scan(usage, file_reader(fd))
        return usage

    def _readers(self) -> list[Reader]:
        readers: list[Reader] = [self.table]
        for region in self.table.regions or []:
            if region.reader is not None:
                readers.append(region.reader)
        return readers

    def wanted(self) -> list[Range]:
        """Every range a reader wants next (for `scan`)."""
        return sorted(w for r in self._readers() for w in r.wanted())

    def drop(self, start: int, end: int) -> None:
        """A wanted range that cannot be read (past the end of a truncated image)."""
        for reader in self._readers():
            reader.drop(start, end)

    def feed(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Bytes of the image at `offset`, in order (a stream) or where wanted (a scan).

        The table goes first: a partition found from these bytes reads its own start from
        them too."""
        self.table.feed(offset, data)
        for reader in self._readers()[1:]:
            reader.feed(offset, data)

    def needed(self, start: int, end: int) -> list[Range]:
        """The parts of [start, end) to write: whole pages (any page with a needed byte),
        the first MiB always. Pages are judged whole even when [start, end) cuts them, so the
        answer does not depend on where a stream's chunks end."""
        lo, hi = start // ALIGN * ALIGN, -(-end // ALIGN) * ALIGN
        regions = self.table.regions
        if regions is None:
            return [(start, end)]
        out: list[Range] = [(lo, min(hi, HEAD))]
        cursor = lo
        for region in regions:
            if region.end <= cursor or region.start >= hi:
                continue
            if region.start > cursor:
                out.append((cursor, region.start))  # a gap: written whole
            part_end = min(hi, region.end)
            out += region.needed(max(cursor, region.start), part_end)
            cursor = part_end
        if cursor < hi:
            out.append((cursor, hi))
        return [(max(s, start), min(e, end)) for s, e in align_out(union(out), ALIGN)
                if min(e, end) > max(s, start)]

    def describe(self) -> str:
        """What was understood, for the log: `ext@264MiB fat@8MiB other@...`."""
        regions = self.table.regions
        if regions is None:
            return "no partition table read"
        return " ".join(f"{r.kind}@{r.start // 1048576}MiB" for r in regions) or "no partitions"
