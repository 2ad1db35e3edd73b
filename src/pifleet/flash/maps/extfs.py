"""Which blocks of an ext2/3/4 filesystem are in use, from its own allocation map.

Read: the superblock, the group descriptors (also with meta_bg, 64-bit descriptors) and the
block bitmap of each group. A group whose bitmap is not initialised (BLOCK_UNINIT, honoured
only with uninit_bg or metadata_csum, as the kernel does) uses only its own metadata. Every
filesystem metadata block is always needed, zero or not: superblocks and their backups,
group descriptors and reserved GDT blocks, bitmaps, inode tables (the journal and everything
else in use is marked in the bitmaps). With flex_bg the bitmaps of a flex group sit at its
start, so a stream has them before the blocks they describe; whatever is not known yet when
its bytes pass is needed, never skipped.

A filesystem this reader does not fully understand (an unknown feature, a journal waiting to
be replayed, errors recorded, bigalloc) is needed whole.
"""

from __future__ import annotations

import struct

from pifleet.flash.maps.ranges import Range, clear_bits, difference, subtract, union
from pifleet.flash.maps.reader import Reader

MAGIC = 0xEF53
SUPERBLOCK = 1024  # its offset in the filesystem, and its size
# Features this reader knows to leave the block bitmaps authoritative.
KNOWN_INCOMPAT = (0x2 | 0x10 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x1000 | 0x2000
                  | 0x4000 | 0x8000 | 0x10000 | 0x20000)
KNOWN_RO_COMPAT = (0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x100 | 0x400 | 0x800
                   | 0x1000 | 0x2000 | 0x4000 | 0x8000 | 0x10000)
INCOMPAT_META_BG, INCOMPAT_64BIT = 0x10, 0x80
RO_SPARSE_SUPER, RO_GDT_CSUM, RO_METADATA_CSUM = 0x1, 0x10, 0x400
COMPAT_RESIZE_INODE, COMPAT_EXCLUDE_BITMAP, COMPAT_SPARSE_SUPER2 = 0x10, 0x100, 0x200
BLOCK_UNINIT = 0x2
STATE_VALID, STATE_ERROR = 0x1, 0x2
MAX_GROUPS = 1 << 18  # 32 TiB in 128 MiB groups: more is not a card's filesystem


def is_ext(block: bytes) -> bool:
    """Whether the first 2 KiB of a partition hold an ext2/3/4 superblock."""
    return len(block) >= 2 * SUPERBLOCK and struct.unpack_from(
        "<H", block, SUPERBLOCK + 56)[0] == MAGIC


class ExtMap(Reader):
    """The allocation of one ext filesystem at byte `start` of the image (`size` bytes)."""

    def __init__(self, start: int, size: int) -> None:
        super().__init__()
        self.start, self.size = start, size
        self.whole = False  # not understood: every byte is needed
        self.ready = False  # geometry known (superblock read)
        self.groups: list[tuple[int, int, int, int]] | None = None  # bitmap, ibitmap, table, flags
        self.meta: list[Range] = []
        self.free: dict[int, list[Range]] = {}
        self._descriptors: dict[int, bytes] = {}
        self.want(start + SUPERBLOCK, start + 2 * SUPERBLOCK, "superblock")

    # --- geometry -------------------------------------------------------------------

    def _superblock(self, sb: bytes) -> None:
        (blocks_lo, first, log_block, log_cluster, per_group, _clusters, inodes_per_group,
         ) = struct.unpack_from("<4xI12xIIIIII", sb, 0)
        magic, state = struct.unpack_from("<HH", sb, 56)
        compat, incompat, ro_compat = struct.unpack_from("<III", sb, 92)
        inode_size = struct.unpack_from("<H", sb, 88)[0] if struct.unpack_from(
            "<I", sb, 76)[0] >= 1 else 128
        reserved_gdt = struct.unpack_from("<H", sb, 206)[0]
        desc_size = struct.unpack_from("<H", sb, 254)[0]
        self.first_meta_bg = struct.unpack_from("<I", sb, 260)[0]
        blocks_hi = struct.unpack_from("<I", sb, 336)[0]
        self.backup_bgs = struct.unpack_from("<II", sb, 588)
        self.block = 1024 << log_block if log_block <= 6 else 0
        self.blocks = blocks_lo | (blocks_hi << 32 if incompat & INCOMPAT_64BIT else 0)
        self.first, self.per_group = first, per_group
        self.desc_size = desc_size if incompat & INCOMPAT_64BIT else 32
        self.features = (compat, incompat, ro_compat)
        self.reserved_gdt = reserved_gdt if compat & COMPAT_RESIZE_INODE else 0
        understood = (
            magic == MAGIC and self.block and state & STATE_VALID and not state & STATE_ERROR
            and not incompat & ~KNOWN_INCOMPAT and not ro_compat & ~KNOWN_RO_COMPAT
            and not compat & COMPAT_EXCLUDE_BITMAP and log_cluster == log_block
            and 256 <= per_group <= 8 * self.block and self.first < self.blocks
            and 32 <= self.desc_size <= self.block and self.desc_size & (self.desc_size - 1) == 0
            and self.blocks * self.block <= self.size and inodes_per_group > 0)
        if not understood:
            self.whole = True
            return
        self.count = -(-(self.blocks - self.first) // per_group)
        if self.count > MAX_GROUPS:
            self.whole = True  # a corrupt superblock, or a filesystem far beyond a card
            return
        self.per_block = self.block // self.desc_size
        self.table_blocks = -(-inodes_per_group * inode_size // self.block)
        self.csum = bool(ro_compat & (RO_GDT_CSUM | RO_METADATA_CSUM))
        self.ready = True
        for index, block in enumerate(self._descriptor_blocks()):
            self.want(*self._bytes(block, block + 1), index)

    def _bytes(self, first: int, end: int) -> Range:
        return self.start + first * self.block, self.start + end * self.block

    def _group_first(self, group: int) -> int:
        return self.first + group * self.per_group

    def _has_super(self, group: int) -> bool:
        compat, _, ro_compat = self.features
        if group == 0:
            return True
        if compat & COMPAT_SPARSE_SUPER2:
            return group in self.backup_bgs
        if not ro_compat & RO_SPARSE_SUPER or group == 1:
            return True
        for base in (3, 5, 7):
            power = base
            while power < group:
                power *= base
            if power == group:
                return True
        return False

    def _meta_bg(self) -> bool:
        return bool(self.features[1] & INCOMPAT_META_BG)

    def _descriptor_blocks(self) -> list[int]:
        """Where each block of group descriptors is (primary copies)."""
        count = -(-self.count // self.per_block)
        if not self._meta_bg():
            return [self.first + 1 + i for i in range(count)]
        blocks = []
        for index in range(count):
            if index < self.first_meta_bg:
                blocks.append(self.first + 1 + index)
            else:
                group = index * self.per_block
                blocks.append(self._group_first(group) + self._has_super(group))
        return blocks

    # --- reading ----------------------------------------------------------------------

    def take(self, start: int, data: bytes, what: str | int) -> None:
        """A superblock, a block of group descriptors, or a group's block bitmap."""
        if what == "superblock":
            self._superblock(data)
        elif isinstance(what, int) and what >= 0:
            self._descriptors[what] = data
            if len(self._descriptors) == len(self._descriptor_blocks()):
                self._read_groups()
        elif isinstance(what, int):
            self._bitmap(-what - 1, data)

    def _read_groups(self) -> None:
        raw = b"".join(self._descriptors[i] for i in range(len(self._descriptors)))
        wide = self.desc_size >= 64
        groups = []
        for group in range(self.count):
            at = group * self.desc_size
            bitmap, ibitmap, table = struct.unpack_from("<III", raw, at)
            flags = struct.unpack_from("<H", raw, at + 18)[0]
            if wide:
                hi = struct.unpack_from("<III", raw, at + 32)
                bitmap, ibitmap, table = (bitmap | hi[0] << 32, ibitmap | hi[1] << 32,
                                          table | hi[2] << 32)
            groups.append((bitmap, ibitmap, table, flags))
        self.groups = groups
        self.meta = self._metadata()
        for group, (bitmap, _, _, flags) in enumerate(groups):
            if self.csum and flags & BLOCK_UNINIT:
                # The kernel makes up this group's bitmap: its own metadata only.
                self.free[group] = subtract(*self._group_bytes(group), self.meta)
            elif self.first <= bitmap < self.blocks:
                self.want(*self._bytes(bitmap, bitmap + 1), -group - 1)

    def _metadata(self) -> list[Range]:
        """Every metadata block, as byte ranges: needed even where the image holds zeros."""
        assert self.groups is not None
        found: list[tuple[int, int]] = [(0, self.first + 1)]  # boot block and superblock
        descriptor_blocks = -(-self.count // self.per_block)
        old_style = min(self.first_meta_bg, descriptor_blocks) if self._meta_bg() else (
            descriptor_blocks)
        for group in range(self.count):
            first = self._group_first(group)
            if self._has_super(group):
                found.append((first, first + 1 + old_style + self.reserved_gdt))
        if self._meta_bg():
            for index in range(self.first_meta_bg, descriptor_blocks):
                base = index * self.per_block
                for group in (base, base + 1, base + self.per_block - 1):
                    if group < self.count:
                        block = self._group_first(group) + self._has_super(group)
                        found.append((block, block + 1))
        for bitmap, ibitmap, table, _ in self.groups:
            found += [(bitmap, bitmap + 1), (ibitmap, ibitmap + 1),
                      (table, table + self.table_blocks)]
        return union(self._bytes(max(s, 0), min(e, self.blocks)) for s, e in found
                     if s < self.blocks)

    def _group_bytes(self, group: int) -> Range:
        first = self._group_first(group)
        return self._bytes(first, min(first + self.per_group, self.blocks))

    def _bitmap(self, group: int, data: bytes) -> None:
        first, end = self._group_bytes(group)
        count = (end - first) // self.block
        free = [(first + lo * self.block, first + hi * self.block)
                for lo, hi in clear_bits(data, count)]
        self.free[group] = difference(free, self.meta)

    # --- the answer ------------------------------------------------------------------

    def needed(self, start: int, end: int) -> list[Range]:
        """The parts of [start, end) (inside this filesystem's partition) that must be
        written: in use, metadata, or not known (yet)."""
        if self.whole or not self.ready or self.groups is None:
            return [(start, end)]
        fs_end = self.start + self.blocks * self.block
        out: list[Range] = []
        lo = max(start, self.start + self.first * self.block)
        if start < lo:
            out.append((start, min(lo, end)))
        group = max((lo - self.start) // self.block - self.first, 0) // self.per_group
        while lo < min(end, fs_end):
            g_end = self._group_bytes(group)[1]
            hi = min(end, g_end)
            free = self.free.get(group)
            out += subtract(lo, hi, free) if free is not None else [(lo, hi)]
            lo, group = hi, group + 1
        if end > fs_end:
            out.append((max(start, fs_end), end))
        return out
