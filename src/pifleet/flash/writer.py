"""The card writer: one decompression stream into one or more targets.

facts.md section 6: stream decompression straight into the write (no temporary file), large
aligned writes, fsync in steps, the first MiB (partition table) held back and written last, and
verify by reading back. Decompression and hashing run in a second thread so they overlap the
writes (lzma, zlib, hashlib and os.pwrite all release the GIL).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from pifleet.errors import Failed
from pifleet.flash import diskio
from pifleet.flash.bmap import BlockMap
from pifleet.flash.diskio import Sink
from pifleet.flash.maps import Usage
from pifleet.flash.maps.ranges import Range

HEAD = 1024 * 1024
ZEROS = bytes(4 * 1024 * 1024)
_ZERO_VIEW = memoryview(ZEROS)
QUEUE_DEPTH = 4
T = TypeVar("T")

Progress = Callable[[int, int | None], None]


class Incomplete(Failed):
    """Writing stopped before the partition table was written: the card is not usable."""


@dataclass
class Written:
    """What the body pass wrote: the held-back head, the image size, the ranges and digest."""

    head: bytes
    size: int
    ranges: list[tuple[int, int]] = field(default_factory=list)
    digest: str = ""
    raw_sha256: str = ""
    zero_ranges: list[tuple[int, int]] = field(default_factory=list)  # read back as zeros


    @property
    def written_bytes(self) -> int:
        """Bytes that reached the card: data, zero-filled ranges and the head."""
        return len(self.head) + sum(e - s for s, e in self.ranges + self.zero_ranges)


@dataclass
class _Chunk:
    offset: int
    data: bytes
    pieces: list[Range] | None = None  # the parts to write; None: all of it


class _Ahead(threading.Thread, Generic[T]):
    """Works a few items ahead of its consumer through a bounded queue. None ends the queue;
    an exception met on the way goes into it for the consumer to decide; `stop` ends the
    thread early (the consumer gave up)."""

    def __init__(self, name: str, depth: int) -> None:
        super().__init__(daemon=True, name=name)
        self.queue: queue.Queue[T | BaseException | None] = queue.Queue(depth)
        self.stop = threading.Event()

    def items(self) -> Iterator[T]:  # pragma: no cover
        """What to hand on, in order."""
        raise NotImplementedError

    def run(self) -> None:
        try:
            for item in self.items():
                if not self._put(item):
                    return
            self._put(None)
        except BaseException as exc:  # handed to the consumer, which decides
            self._put(exc)

    def _put(self, item: T | BaseException | None) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False


class _Producer(_Ahead[_Chunk]):
    """Decompresses and hashes ahead of the writer, a few chunks deep; with a `usage`, it
    also reads the filesystems' maps as they pass and marks the parts each chunk needs."""

    def __init__(self, chunks: Iterator[tuple[int, bytes]], want_raw_hash: bool,
                 usage: Usage | None = None) -> None:
        super().__init__("pifleet-decompress", QUEUE_DEPTH)
        self.chunks = chunks
        self.raw = hashlib.sha256() if want_raw_hash else None
        self.usage = usage

    def items(self) -> Iterator[_Chunk]:
        for offset, data in self.chunks:
            if self.raw is not None:
                self.raw.update(data)
            pieces = None
            if self.usage is not None:
                self.usage.feed(offset, data)
                pieces = self.usage.needed(offset, offset + len(data))
            yield _Chunk(offset, data, pieces)


def prepare(sinks: list[Sink]) -> None:
    """Make every target look blank until the end: truncate files, zero a device's first MiB.

    An old partition table left on a card would make a half-written card look complete.
    """
    for sink in sinks:
        if sink.is_device:
            os.pwrite(sink.fd, bytes(HEAD), 0)
            os.fsync(sink.fd)
        else:
            os.ftruncate(sink.fd, 0)


def _pieces(chunk: _Chunk, ranges: list[tuple[int, int, str]], start: int
            ) -> Iterator[tuple[int, bytes, int]]:
    """Parts of `chunk` inside mapped ranges, as (offset, bytes, range index)."""
    end = chunk.offset + len(chunk.data)
    index = start
    while index < len(ranges) and ranges[index][0] < end:
        lo = max(ranges[index][0], chunk.offset)
        hi = min(ranges[index][1], end)
        if lo < hi:
            yield lo, chunk.data[lo - chunk.offset: hi - chunk.offset], index
        if ranges[index][1] > end:
            break
        index += 1


def write_body(chunks: Iterator[tuple[int, bytes]], sinks: list[Sink], *,
               expected_size: int | None,
               block_map: BlockMap | None = None, raw_sha256: str | None = None,
               progress: Progress | None = None, want_digest: bool = True,
               mapped_only: bool = False, usage: Usage | None = None) -> Written:
    """Write everything but the head. Raises Incomplete on any fault found while writing.

    `chunks` yields (offset, bytes) in ascending order: the whole image, or with
    `mapped_only` just the ranges to write of an uncompressed image (a bmap's, or what its
    filesystems use: the rest is not even read). With `usage`, a stream is written only where
    its filesystems use it (see usage.py).
    """
    diskio.tune_allocator()
    for sink in sinks:
        diskio.start_direct(sink)
    producer = _Producer(chunks, want_raw_hash=raw_sha256 is not None, usage=usage)
    producer.start()
    # Writes run in their own threads while this one hashes: both release the GIL.
    pool = ThreadPoolExecutor(len(sinks), thread_name_prefix="pifleet-write")
    digest = hashlib.sha256()
    head = bytearray(HEAD)
    size = 0
    mapped = block_map.byte_ranges() if block_map else None
    range_hashes: dict[int, hashlib._Hash] = {}
    cursor = 0
    written_ranges: list[tuple[int, int]] = []
    zero_ranges: list[tuple[int, int]] = []
    aligner = _Aligner()
    try:
        while True:
            item = producer.queue.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise Incomplete(f"reading the image failed: {item}") from item
            size = max(size, item.offset + len(item.data))
            if expected_size is not None and size > expected_size:
                raise Incomplete(f"the image is larger than its container or bmap says "
                                 f"({expected_size} bytes)")
            chunk: _Chunk | None = item
            if item.offset < HEAD:
                keep = min(HEAD - item.offset, len(item.data))
                head[item.offset: item.offset + keep] = item.data[:keep]
                chunk = _Chunk(HEAD, item.data[keep:]) if len(item.data) > keep else None
            if chunk is not None:
                if mapped is None:
                    _write_pieces(pool, sinks, chunk, item.pieces, aligner,
                                  digest if want_digest else None, written_ranges, zero_ranges)
                else:
                    cursor = _write_mapped(pool, sinks, chunk, mapped, cursor, range_hashes,
                                           block_map, digest if want_digest else None,
                                           written_ranges, head)
            if progress:
                progress(size, expected_size)
        _write_pieces(pool, sinks, _Chunk(size, b""), [], aligner,
                      digest if want_digest else None, written_ranges, zero_ranges, last=True)
        if mapped_only and expected_size is not None:
            size = expected_size  # the unmapped tail is zeros by definition
        head = head[: min(HEAD, size)]
        if mapped is not None:
            # Ranges inside the head are checked here: the head is written last.
            _check_head_ranges(bytes(head), mapped, block_map)
        if expected_size is not None and size != expected_size:
            raise Incomplete(f"the image ended early: {size} of {expected_size} bytes")
        raw = producer.raw.hexdigest() if producer.raw is not None else ""
        if raw_sha256 and raw != raw_sha256.lower():
            raise Incomplete(f"the raw image's SHA-256 is {raw}, expected {raw_sha256}")
        for sink in sinks:
            if not sink.is_device:
                os.ftruncate(sink.fd, size)
            os.fsync(sink.fd)
    except KeyboardInterrupt:
        raise Incomplete("interrupted") from None
    except OSError as exc:
        raise Incomplete(f"write failed: {exc.strerror or exc}") from exc
    finally:
        producer.stop.set()
        pool.shutdown(wait=True)
        for sink in sinks:
            diskio.stop_direct(sink)
        diskio.release_memory()
    return Written(bytes(head), size, written_ranges, digest.hexdigest(), raw, zero_ranges)


class _Aligner:
    """Cuts the pieces to write at page boundaries (diskio.ALIGN) across chunks.

    Decoders hand out chunks of any length; a piece ending inside a page would be written
    buffered, and its page written again with the next piece. The few bytes past the last
    page boundary are held back and completed from the next piece (one page copied), so
    every piece but the image's last starts and ends on a page boundary.
    """

    def __init__(self) -> None:
        self.offset = 0
        self.carry = bytearray()

    def pieces(self, start: int, base: bytes, at: int, length: int
               ) -> Iterator[tuple[int, bytes | bytearray, int, int]]:
        """(offset, buffer, index, length) pieces for `length` bytes of `base` from `at`."""
        if self.carry and start != self.offset + len(self.carry):
            yield from self.flush()
        if self.carry:
            take = min(-(self.offset + len(self.carry)) % diskio.ALIGN, length)
            self.carry += base[at: at + take]
            start, at, length = start + take, at + take, length - take
            if (self.offset + len(self.carry)) % diskio.ALIGN == 0:
                yield from self.flush()
        cut = (start + length) // diskio.ALIGN * diskio.ALIGN
        if length and cut > start:
            yield start, base, at, cut - start
            at, length, start = at + cut - start, length - (cut - start), cut
        if length:
            if not self.carry:
                self.offset = start
            self.carry += base[at: at + length]

    def flush(self) -> Iterator[tuple[int, bytes | bytearray, int, int]]:
        """The held-back bytes, if any."""
        if self.carry:
            carry, self.carry = self.carry, bytearray()
            yield self.offset, carry, 0, len(carry)


def _write_pieces(pool: ThreadPoolExecutor, sinks: list[Sink], chunk: _Chunk,
                  pieces: list[Range] | None, aligner: _Aligner,
                  digest: hashlib._Hash | None, written: list[Range], zeros: list[Range],
                  last: bool = False) -> None:
    """Write the chosen parts of a chunk (all of it without `pieces`); `last` flushes.

    Zero parts are found by comparison, not hashing (memcmp is far cheaper than SHA-256 and
    images are mostly zeros) and cleared instead of written (see `_write`).
    """
    end = chunk.offset + len(chunk.data)
    parts: list[tuple[int, bytes | bytearray, int, int]] = []
    for start, stop in pieces if pieces is not None else [(chunk.offset, end)]:
        start, stop = max(start, chunk.offset), min(stop, end)
        if start < stop:
            parts += aligner.pieces(start, chunk.data, start - chunk.offset, stop - start)
    if last:
        parts += aligner.flush()
    for start, base, at, length in parts:
        data = memoryview(base)[at: at + length]
        zero = (base.startswith(_ZERO_VIEW[:length], at) if length <= len(ZEROS)
                else data == bytes(length))
        pending = _write(pool, sinks, start, data, skip_zero=zero)
        if zero:
            _extend(zeros, start, start + length)
        else:
            if digest is not None:
                digest.update(data)
            _extend(written, start, start + length)
        _wait(pending)


def _extend(ranges: list[tuple[int, int]], start: int, end: int) -> None:
    if ranges and ranges[-1][1] == start:
        ranges[-1] = (ranges[-1][0], end)
    else:
        ranges.append((start, end))


def _write_mapped(pool: ThreadPoolExecutor, sinks: list[Sink], chunk: _Chunk,
                  mapped: list[tuple[int, int, str]], cursor: int,
                  range_hashes: dict[int, hashlib._Hash], block_map: BlockMap | None,
                  digest: hashlib._Hash | None, written: list[tuple[int, int]],
                  head: bytes | bytearray) -> int:
    """Write the mapped parts of one chunk, checking each range's checksum as it completes."""
    assert block_map is not None
    end = chunk.offset + len(chunk.data)
    for offset, data, index in _pieces(chunk, mapped, cursor):
        pending = _write(pool, sinks, offset, data, skip_zero=False)
        if block_map.algorithm and mapped[index][2]:
            if index not in range_hashes:
                # A range that starts inside the held-back head: its first part is there.
                start = mapped[index][0]
                seed = head[start:HEAD] if start < HEAD else b""
                range_hashes[index] = hashlib.new(block_map.algorithm, seed)
            range_hashes[index].update(data)
        if digest is not None:
            digest.update(data)
        _wait(pending)
        _extend(written, offset, offset + len(data))
    while cursor < len(mapped) and mapped[cursor][1] <= end:
        _check_range(cursor, mapped, range_hashes)
        cursor += 1
    return cursor


def _check_range(index: int, mapped: list[tuple[int, int, str]],
                 hashes: dict[int, hashlib._Hash]) -> None:
    start, end, expected = mapped[index]
    if end <= HEAD or not expected:
        return
    got = hashes.pop(index).hexdigest() if index in hashes else ""
    if got != expected.lower():
        raise Incomplete(f"bmap checksum mismatch in bytes {start}-{end}: the image does not "
                         f"match its bmap")


def _check_head_ranges(head: bytes, mapped: list[tuple[int, int, str]],
                       block_map: BlockMap | None) -> None:
    assert block_map is not None
    for start, end, expected in mapped:
        if end > HEAD or not expected or not block_map.algorithm:
            continue
        whole = hashlib.new(block_map.algorithm, head[start:end]).hexdigest()
        if whole != expected.lower():
            raise Incomplete(f"bmap checksum mismatch in bytes {start}-{end}")


def _write(pool: ThreadPoolExecutor, sinks: list[Sink], offset: int,
           data: bytes | memoryview, skip_zero: bool) -> list[Future[None]]:
    """Start writing `data` at `offset` to every sink; the caller waits on the futures.

    `skip_zero` says `data` is all zeros: a fresh file leaves a hole, a device zeroes out.
    """
    def one(sink: Sink) -> None:
        if skip_zero and (sink.sparse
                          or (sink.zeroout and diskio.zero_out(sink, offset, len(data)))):
            return
        diskio.write(sink, data, offset)

    return [pool.submit(one, s) for s in sinks]


def _wait(pending: list[Future[None]]) -> None:
    for future in pending:
        future.result()


def verify(sink: Sink, written: Written, progress: Progress | None = None,
           image: Path | None = None) -> None:
    """Read back what was written, past the cache, and compare: zero-filled ranges must read
    as zeros; data ranges must equal the uncompressed `image` file byte for byte when it is
    given (cheaper than hashing both sides, and exact), else their SHA-256 must equal the one
    taken while writing. Reading runs a few pieces ahead of the checking, in its own thread.
    Incomplete if anything differs."""
    os.fsync(sink.fd)
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(sink.fd, 0, 0, os.POSIX_FADV_DONTNEED)
    pieces = sorted([(s, e, True) for s, e in written.zero_ranges]
                    + [(s, e, False) for s, e in written.ranges])
    total = sum(e - s for s, e, _ in pieces)
    digest = hashlib.sha256()
    done = 0
    source = os.open(image, os.O_RDONLY) if image is not None else None
    diskio.start_direct(sink)
    reader = _ReadBack(sink, pieces)
    reader.start()
    try:
        for offset, zero, data in reader:
            if zero and not ZEROS.startswith(data):
                raise Incomplete(f"{sink.path}: bytes from {offset} should read back as zeros "
                                 f"and do not (bad card or reader?)")
            if not zero and source is not None:
                if not os.pread(source, len(data), offset).startswith(data):
                    raise Incomplete(f"{sink.path}: bytes from {offset} differ from the "
                                     f"image (bad card or reader?)")
            elif not zero:
                digest.update(data)
            done += len(data)
            if progress:
                progress(done, total)
    except OSError as exc:
        raise Incomplete(f"{sink.path}: reading back failed: {exc.strerror or exc}") from exc
    finally:
        reader.stop.set()
        reader.join()
        diskio.stop_direct(sink)
        if source is not None:
            os.close(source)
    if source is None and digest.hexdigest() != written.digest:
        raise Incomplete(f"{sink.path}: what was read back differs from the image "
                         f"(bad card or reader?)")


class _ReadBack(_Ahead[tuple[int, bool, memoryview]]):
    """Reads the written pieces in order, in 4 MiB steps, a few steps ahead of the checker.

    Buffers are reused: with BUFFERS of them and a queue of BUFFERS - 2, the one being filled
    is never one the checker still holds.
    """

    BUFFERS = 4
    STEP = 4 * 1024 * 1024

    def __init__(self, sink: Sink, pieces: list[tuple[int, int, bool]]) -> None:
        super().__init__("pifleet-verify", self.BUFFERS - 2)
        self.sink, self.pieces = sink, pieces
        self.buffers = [mmap.mmap(-1, self.STEP + 2 * diskio.ALIGN)
                        for _ in range(self.BUFFERS)]

    def items(self) -> Iterator[tuple[int, bool, memoryview]]:
        turn = 0
        for start, end, zero in self.pieces:
            for offset in range(start, end, self.STEP):
                length = min(self.STEP, end - offset)
                buffer = self.buffers[turn % self.BUFFERS]
                turn += 1
                data = diskio.read_into(self.sink, buffer, offset, length)
                if len(data) < length:
                    raise Incomplete(f"{self.sink.path}: read back ended at byte "
                                     f"{offset + len(data)}")
                yield offset, zero, data

    def __iter__(self) -> Iterator[tuple[int, bool, memoryview]]:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


def finish(sink: Sink, head: bytes) -> None:
    """Write the held-back head (partition table) last, flush, and check it reads back."""
    try:
        diskio.pwrite_all(sink.fd, head, 0)
        os.fsync(sink.fd)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(sink.fd, 0, len(head), os.POSIX_FADV_DONTNEED)
        back = os.pread(sink.fd, len(head), 0)
    except OSError as exc:
        raise Failed(f"{sink.path}: writing the partition table failed: {exc.strerror}") from exc
    if back != head:
        raise Failed(f"{sink.path}: the partition table did not read back as written")
