"""Byte ranges as sorted lists of (start, end) pairs, end exclusive, and the zero-run search
that turns allocation tables (bitmaps, FATs) into free ranges at C speed."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator

Range = tuple[int, int]

_ZERO_RUNS: dict[int, re.Pattern[bytes]] = {}


def union(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, merged (touching ranges joined), empty ones dropped."""
    out: list[Range] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract(start: int, end: int, holes: list[Range]) -> list[Range]:
    """[start, end) without the sorted, disjoint `holes`."""
    out: list[Range] = []
    index = max(bisect.bisect_right(holes, (start, start)) - 1, 0)
    cursor = start
    while index < len(holes) and holes[index][0] < end:
        lo, hi = holes[index]
        if hi > cursor:
            if lo > cursor:
                out.append((cursor, min(lo, end)))
            cursor = max(cursor, hi)
        index += 1
    if cursor < end:
        out.append((cursor, end))
    return out


def difference(ranges: list[Range], holes: list[Range]) -> list[Range]:
    """Sorted `ranges` without the sorted, disjoint `holes`."""
    out: list[Range] = []
    for start, end in ranges:
        out += subtract(start, end, holes)
    return out


def clip(ranges: list[Range], start: int, end: int) -> list[Range]:
    """The parts of sorted, disjoint `ranges` inside [start, end)."""
    index = max(bisect.bisect_right(ranges, (start, start)) - 1, 0)
    out: list[Range] = []
    while index < len(ranges) and ranges[index][0] < end:
        lo, hi = max(ranges[index][0], start), min(ranges[index][1], end)
        if lo < hi:
            out.append((lo, hi))
        index += 1
    return out


def align_out(ranges: list[Range], unit: int) -> list[Range]:
    """Each range widened to whole `unit`s (absolute offsets), then merged."""
    return union((s // unit * unit, -(-e // unit) * unit) for s, e in ranges)


def zero_entries(table: bytes | bytearray, width: int) -> Iterator[Range]:
    """Runs of all-zero entries of `width` bytes in `table`, as entry indices [first, end)."""
    pattern = _ZERO_RUNS.get(width)
    if pattern is None:
        pattern = _ZERO_RUNS[width] = re.compile(b"\x00{%d,}" % width)
    for match in pattern.finditer(table):
        first = -(-match.start() // width)
        end = match.end() // width
        if end > first:
            yield first, end


def clear_bits(bitmap: bytes | bytearray, count: int) -> Iterator[Range]:
    """Runs of clear bits among the first `count` bits (bit i is bit i % 8 of byte i // 8, as
    in ext2/3/4 bitmaps), found through runs of zero bytes widened by the clear bits at their
    edges. A run of clear bits that contains no whole zero byte is not reported (it is at
    most 14 bits long)."""
    for first, end in zero_entries(bitmap, 1):
        lo, hi = first * 8, end * 8
        if first > 0:
            lo -= 8 - bitmap[first - 1].bit_length()  # clear high bits of the byte before
        if end < len(bitmap):
            after = bitmap[end]
            hi += (after & -after).bit_length() - 1  # clear low bits of the byte after
        hi = min(hi, count)
        if lo < hi:
            yield lo, hi
