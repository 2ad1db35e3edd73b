"""Reading metadata that passes by in a stream, or that is read on purpose from a file.

A reader says which byte ranges it wants next (`wanted`); it is fed bytes as they come
(`feed`), in any pieces, and each wanted range, once complete, goes to `take`, which may add new
wants (a superblock tells where the group descriptors are, those where the bitmaps are). The
same reader serves a stream, which passes once in order (a want that is already behind the
stream can never be met: the reader then knows less, never something wrong), and a file,
which is read exactly where the reader wants (`scan`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

from pifleet.flash.maps.ranges import Range


class Reader:
    """Base of the partition table and filesystem readers."""

    def __init__(self) -> None:
        self._wants: dict[Range, str | int] = {}
        self._partial: dict[Range, bytearray] = {}

    def want(self, start: int, end: int, what: str | int) -> None:
        """Ask for bytes [start, end); `take` gets them with `what`."""
        if end > start and (start, end) not in self._wants:
            self._wants[(start, end)] = what

    def wanted(self) -> list[Range]:
        """The ranges still wanted, in order."""
        return sorted(self._wants)

    def feed(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Bytes at `offset`: complete what they can (repeatedly, as new wants appear)."""
        end = offset + len(data)
        progressed = True
        while progressed:
            progressed = False
            for start, stop in self.wanted():
                if stop <= offset or start >= end:
                    continue
                buffer = self._partial.setdefault((start, stop), bytearray())
                filled = start + len(buffer)
                if filled < offset:
                    continue  # its beginning went by before it was wanted
                hi = min(stop, end)
                if hi > filled:
                    buffer += data[filled - offset: hi - offset]
                if len(buffer) == stop - start:
                    what = self._wants.pop((start, stop))
                    del self._partial[(start, stop)]
                    self.take(start, bytes(buffer), what)
                    progressed = True

    def drop(self, start: int, end: int) -> None:
        """Stop wanting [start, end) (it cannot be had)."""
        self._wants.pop((start, end), None)
        self._partial.pop((start, end), None)

    def take(self, start: int, data: bytes, what: str | int) -> None:  # pragma: no cover
        """A wanted range is complete."""
        raise NotImplementedError


class Wants(Protocol):
    """What `scan` drives: a Reader, or something made of readers."""

    def wanted(self) -> list[Range]: ...
    def feed(self, offset: int, data: bytes | bytearray | memoryview) -> None: ...
    def drop(self, start: int, end: int) -> None: ...


def scan(reader: Wants, read: Callable[[int, int], bytes]) -> None:
    """Read exactly what `reader` wants until it wants nothing more (`read(start, length)`).

    A range that cannot be read in full (past the end of the file) is given what there is
    and then dropped, so a truncated image ends the scan instead of looping.
    """
    while True:
        wants = reader.wanted()
        if not wants:
            return
        for start, end in wants:
            data = read(start, end - start)
            reader.feed(start, data)
            if len(data) < end - start:
                reader.drop(start, end)


def file_reader(fd: int) -> Callable[[int, int], bytes]:
    """`read(start, length)` for `scan` over an open file descriptor."""
    return lambda start, length: os.pread(fd, length, start)
