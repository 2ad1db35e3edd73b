"""Range arithmetic and the zero-run searches behind the allocation maps, against brute force."""

from __future__ import annotations

import random

import pytest

from pifleet.flash.maps import ranges
from pifleet.flash.maps.reader import Reader


def _bits(bitmap: bytes, count: int) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for bit in range(count):
        if not bitmap[bit // 8] >> (bit % 8) & 1:
            if runs and runs[-1][1] == bit:
                runs[-1] = (runs[-1][0], bit + 1)
            else:
                runs.append((bit, bit + 1))
    return runs


@pytest.mark.parametrize("seed", range(30))
def test_clear_bits_finds_every_run_that_holds_a_zero_byte(seed: int) -> None:
    rng = random.Random(seed)
    # Long runs of set and clear bits, as a filesystem's bitmap has them.
    bits = []
    while len(bits) < 4096:
        bits += [rng.random() < 0.5] * rng.choice([1, 3, 7, 9, 30, 200])
    count = rng.randrange(3000, 4096)
    bitmap = bytes(sum(bits[i * 8 + j] << j for j in range(8)) for i in range(512))
    found = list(ranges.clear_bits(bitmap, count))
    truth = _bits(bitmap, count)
    for lo, hi in found:  # each reported run is really clear...
        assert any(a <= lo and hi <= b for a, b in truth)
    for a, b in truth:  # ...and every run of 16 bits or more is reported in full
        if b - a >= 16:
            assert (a, b) in found


@pytest.mark.parametrize("width", [2, 4])
def test_zero_entries_are_whole_aligned_entries(width: int) -> None:
    rng = random.Random(width)
    table = bytes(rng.choice([0, 0, 0, 1]) * rng.randrange(256) for _ in range(4000 * width))
    truth = [i for i in range(4000) if table[i * width:(i + 1) * width] == bytes(width)]
    found = [i for a, b in ranges.zero_entries(table, width) for i in range(a, b)]
    assert found == truth


def test_range_arithmetic() -> None:
    assert ranges.union([(5, 6), (0, 2), (2, 3), (10, 10)]) == [(0, 3), (5, 6)]
    assert ranges.subtract(0, 10, [(2, 3), (5, 7), (9, 12)]) == [(0, 2), (3, 5), (7, 9)]
    assert ranges.subtract(4, 6, [(0, 5)]) == [(5, 6)]
    assert ranges.difference([(0, 4), (6, 10)], [(3, 7)]) == [(0, 3), (7, 10)]
    assert ranges.clip([(0, 4), (6, 10)], 2, 8) == [(2, 4), (6, 8)]
    assert ranges.align_out([(1, 5), (4097, 4098)], 4096) == [(0, 8192)]


class _Recorder(Reader):
    """Wants 0-100; then, from its content, 300-350 (as a superblock points elsewhere)."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[tuple[int, bytes]] = []
        self.want(0, 100, "first")

    def take(self, start: int, data: bytes, what: str | int) -> None:
        self.got.append((start, data))
        if what == "first":
            self.want(300, 350, "second")


@pytest.mark.parametrize("piece", [1, 7, 99, 100, 333, 1000])
def test_a_reader_gets_its_ranges_from_pieces_of_any_size(piece: int) -> None:
    data = bytes(random.Random(piece).randrange(256) for _ in range(1000))
    reader = _Recorder()
    for at in range(0, len(data), piece):
        reader.feed(at, data[at: at + piece])
    assert reader.got == [(0, data[:100]), (300, data[300:350])]
    assert reader.wanted() == []


def test_a_want_whose_start_went_by_is_never_met() -> None:
    reader = _Recorder()
    reader.feed(50, bytes(100))  # the stream began before 0-100 was fed: missed
    reader.feed(150, bytes(300))
    assert reader.got == [] and reader.wanted() == [(0, 100)]
