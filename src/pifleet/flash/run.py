"""`pifleet flash` as a library call: check everything, then write, verify, configure, finish.

Two stages so the CLI can ask for confirmation in between: `plan` only reads and checks (any
problem is BadInput: nothing was changed), `execute` writes.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pifleet.errors import BadInput, Failed
from pifleet.events import Emitter, Status
from pifleet.flash import bmap as bmaps
from pifleet.flash import (
    bootconfig,
    catalog,
    compress,
    download,
    holders,
    maps,
    mbr,
    sources,
    writer,
)
from pifleet.flash import targets as checks
from pifleet.flash.bootconfig import FirstBoot
from pifleet.flash.fat import FatVolume
from pifleet.flash.maps import ranges

PHASE = "flash"
Progress = Callable[[str, int, int | None], None]  # (what, done, total)


@dataclass
class Request:
    """What to flash where. `boots[i]` configures `targets[i]` (None: leave the image as is)."""

    image: str
    targets: list[Path]
    boots: list[FirstBoot | None]
    format: str = "auto"
    sha256: str | None = None
    image_sha256: str | None = None
    bmap: Path | None = None
    use_bmap: bool = True
    verify: bool = True
    full: bool = False  # every byte, free space included, instead of what filesystems use
    merge_user_data: bool = True
    policy: checks.Policy = field(default_factory=checks.Policy)
    cache: Path | None = None


@dataclass
class Plan:
    """A checked request, ready to write."""

    request: Request
    source: sources.Source
    block_map: bmaps.BlockMap | None
    targets: list[checks.Target]
    detected: bootconfig.Detection | None = None

    @property
    def image_size(self) -> int | None:
        """The raw image size, when the container or the bmap says it."""
        if self.block_map:
            return self.block_map.image_size
        return self.source.info.size


@dataclass
class CardResult:
    """How one card turned out."""

    target: Path
    name: str
    format: str = "none"
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    written: int = 0  # bytes that reached the card (data, zero-filled ranges, first MiB)
    verified: int = 0  # of those, bytes read back and found equal


def _name(path: Path, boot: FirstBoot | None) -> str:
    return boot.hostname if boot else str(path)


def plan(request: Request, emitter: Emitter, progress: Progress | None = None) -> Plan:
    """Resolve the image and check every target. Changes nothing; BadInput on any problem."""
    if request.format not in bootconfig.FORMATS:
        raise BadInput(f"--format {request.format}: use one of {', '.join(bootconfig.FORMATS)}")
    if not request.targets:
        raise BadInput("give at least one TARGET")
    if len(request.boots) != len(request.targets):
        raise BadInput(f"{len(request.targets)} targets but {len(request.boots)} hostnames")
    if len({t.resolve() for t in request.targets}) != len(request.targets):
        raise BadInput("the same TARGET is given twice")
    image_sha256 = sources.check_hex(request.image_sha256, "--image-sha256")
    request.image_sha256 = image_sha256
    if _downloads(request.image):
        # Every target is checked before a download starts, the cache among the sources: a
        # cache on a filesystem of a target would be overwritten.
        cache = request.cache or download.cache_root()
        guard = _guard([holders.footprint("the download cache", cache)])
        for target in request.targets:
            checks.check(target, None, request.policy, guard)
    with emitter.step(None, PHASE, "source") as step:
        source = sources.resolve(
            request.image, request.sha256, cache=request.cache,
            progress=(lambda d, t: progress("source", d, t)) if progress else None)
        step.message = f"{source.path.name} ({source.info.kind})"
    for target in request.targets:
        if target.exists() and os.path.samefile(target, source.path):
            raise BadInput(f"{target}: is the image itself; give another target")
    block_map = None
    if request.full and request.bmap:
        raise BadInput("--full writes every byte, --bmap only the mapped ranges: give one")
    bmap_path = request.bmap or (bmaps.beside(source.path)
                                 if request.use_bmap and not request.full else None)
    if bmap_path is not None:
        block_map = bmaps.load(bmap_path)
        if source.info.size is not None and source.info.size != block_map.image_size:
            raise BadInput(f"{bmap_path}: bmap is for an image of {block_map.image_size} "
                           f"bytes, but {source.path.name} holds {source.info.size}")
    checked = Plan(request, source, block_map, [])
    # .gz, .bz2 and some .zst do not record the image size: the end of the image's last
    # partition is then the least a card must hold, read from the first decompressed sector.
    needed = checked.image_size or _partitions_end(source)
    with emitter.step(None, PHASE, "check-targets") as step:
        guard = _guard([holders.footprint("the image", source.path)]
                       + ([holders.footprint("the bmap", bmap_path)] if bmap_path else []))
        checked.targets = [checks.check(t, needed, request.policy, guard)
                           for t in request.targets]
        step.message = "; ".join(t.describe() for t in checked.targets)
    if any(request.boots) and request.format != "none":
        if shutil.which("mcopy") is None:
            raise BadInput("first-boot settings need mtools (mcopy), which is not installed: "
                           "install the `mtools` package, or use --format none")
        if source.info.kind == "raw":
            checked.detected = _detect_in_image(source.path, request.format)
    return checked


def _downloads(image: str) -> bool:
    """Whether IMAGE names something to download (a URL or a catalog name)."""
    return download.is_url(image) or (not Path(image).exists() and catalog.find(image)
                                      is not None)


def _guard(prints: list[holders.Footprint]) -> Callable[[Path], None]:
    """A target check: BadInput when writing the target would change one of the sources
    (the image, its bmap, the download cache)."""
    def guard(target: Path) -> None:
        reason = holders.conflict(target, holders.reach(target), prints)
        if reason:
            raise BadInput(reason)

    return guard


def _partitions_end(source: sources.Source) -> int | None:
    """Where the image's last partition ends, from its first sector (None without an MBR)."""
    blocks = compress.chunks(source.path, source.info)
    try:
        first = next(blocks, b"")
    except compress.CorruptStream as exc:
        raise BadInput(f"{source.path}: {exc}") from exc
    finally:
        blocks.close()  # stops a decoding subprocess, if any
    parts = mbr.parse(first[: mbr.SECTOR])
    return max((p.start + p.size for p in parts), default=None)


def _detect_in_image(path: Path, fmt: str) -> bootconfig.Detection | None:
    """For an uncompressed image, decide the format before writing, so a failure is BadInput."""
    with path.open("rb") as handle:
        part = mbr.boot_partition(handle.read(mbr.SECTOR))
    if part is None:
        raise BadInput(f"{path}: no FAT boot partition in the image's partition table; "
                       f"first-boot settings cannot be written (use --format none)")
    found = bootconfig.detect(FatVolume(path, part.start))
    if fmt == "auto" and found.format is None:
        raise BadInput(f"{path}: cannot tell which first-boot format this image reads "
                       f"({found.reason}); choose one with --format")
    return found


def execute(checked: Plan, emitter: Emitter, progress: Progress | None = None
            ) -> list[CardResult]:
    """Write the image to every target, verify, write first-boot files, then the partition table.

    Any fault before the partition table is written raises Failed saying the card is incomplete.
    """
    request = checked.request
    results = [CardResult(t.path, _name(t.path, b)) for t, b in zip(checked.targets,
                                                                    request.boots, strict=True)]
    checks.release(checked.targets)  # a mount that will not come off stops us before any write
    fds: list[int] = []
    try:
        for target in checked.targets:
            fds.append(checks.open_target(target))
        sinks = [writer.Sink(fd, t.path, t.is_device, sparse=not t.is_device,
                             zeroout=t.is_device and sys.platform.startswith("linux"))
                 for fd, t in zip(fds, checked.targets, strict=True)]
        try:
            written = _write(checked, sinks, emitter, results, progress)
            for sink, result, boot in zip(sinks, results, request.boots, strict=True):
                _complete(checked, sink, written, boot, result, emitter, progress)
        except KeyboardInterrupt:
            raise Failed("interrupted: the card is incomplete (no partition table was "
                         "written); flash it again") from None
        except OSError as exc:  # an I/O error on a card, or a tool that vanished mid-way
            raise Failed(f"{exc.filename or 'write'}: {exc.strerror or exc}: the card is "
                         "incomplete (no partition table was written); flash it again"
                         ) from exc
    finally:
        for fd in fds:
            os.close(fd)
    return results


def _write(checked: Plan, sinks: list[writer.Sink], emitter: Emitter,
           results: list[CardResult], progress: Progress | None) -> writer.Written:
    request = checked.request
    names = ", ".join(r.name for r in results)
    began = time.monotonic()
    with emitter.step(None, PHASE, "write") as step:
        writer.prepare(sinks)
        try:
            source, info, block_map = checked.source.path, checked.source.info, checked.block_map
            # An uncompressed image is read only where it is written (a bmap's ranges, or
            # what its filesystems use), unless its whole SHA-256 is to be checked.
            direct = info.kind == "raw" and not request.image_sha256
            usage = None if block_map is not None or request.full else maps.Usage(info.size)
            only: list[tuple[int, int]] | None = None
            if direct and block_map is not None:
                only = [(s, e) for s, e, _ in block_map.byte_ranges()]
            elif direct and usage is not None and info.size is not None:
                usage = _scan(source, info.size)
                only = usage.needed(0, info.size)
            pieces = (compress.mapped_pieces(source, only) if only is not None
                      else compress.pieces(source, info, _skipper(request, usage, block_map)))
            written = writer.write_body(
                pieces, sinks, expected_size=checked.image_size, block_map=block_map,
                raw_sha256=request.image_sha256,
                # An uncompressed image is compared with the card directly (see verify).
                want_digest=request.verify and info.kind != "raw",
                mapped_only=only is not None, usage=usage if only is None else None,
                progress=(lambda d, t: progress("write", d, t)) if progress else None)
        except writer.Incomplete as exc:
            raise Failed(f"{names}: {exc}. The card is incomplete: its partition table was "
                         f"not written, so it will not boot; flash it again") from exc
        seconds = time.monotonic() - began
        rate = written.size / seconds / 1e6 if seconds else 0
        mode = ("bmap" if checked.block_map else "every byte" if request.full
                else f"what the filesystems use: {usage.describe()}" if usage else "")
        step.changed = True
        step.message = (f"{written.written_bytes} of {written.size} bytes to {names} "
                        f"({mode}; {rate:.0f} MB/s of image)")
    return written


def _skipper(request: Request, usage: maps.Usage | None, block_map: bmaps.BlockMap | None
             ) -> Callable[[int, int], bool] | None:
    """What a stream need not even decode (blocks of a multi-block .xz): bytes the
    filesystems do not use, or that the bmap does not map. Nothing when the whole image's
    SHA-256 is to be checked."""
    if request.image_sha256:
        return None
    if usage is not None:
        return lambda start, end: not usage.needed(start, end)
    if block_map is not None:
        mapped = [(s, e) for s, e, _ in block_map.byte_ranges()]
        return lambda start, end: start >= writer.HEAD and not ranges.clip(mapped, start, end)
    return None


def _scan(path: Path, size: int) -> maps.Usage:
    """The filesystems' maps of an uncompressed image, read where they are."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        return maps.Usage.scan(fd, size)
    finally:
        os.close(fd)


def _complete(checked: Plan, sink: writer.Sink, written: writer.Written,
              boot: FirstBoot | None, result: CardResult, emitter: Emitter,
              progress: Progress | None) -> None:
    request, source = checked.request, checked.source
    incomplete = (f"{result.name}: the card is incomplete (no partition table was written); "
                  f"flash it again")
    if request.verify:
        with emitter.step(result.name, PHASE, "verify") as step:
            try:
                writer.verify(sink, written, (lambda d, t: progress("verify", d, t))
                              if progress else None,
                              image=source.path if source.info.kind == "raw" else None)
            except writer.Incomplete as exc:
                raise Failed(f"{exc}. {incomplete}") from exc
            result.verified = sum(e - s for s, e in written.ranges + written.zero_ranges)
            step.message = f"read back {result.verified} bytes: equal"
    if boot is not None and request.format != "none":
        with emitter.step(result.name, PHASE, "configure") as step:
            try:
                _configure(sink, written, boot, request, result, emitter)
            except Failed as exc:
                raise Failed(f"{exc}. {incomplete}") from exc
            step.changed = True
            step.message = f"{result.format}: {', '.join(result.files)}"
    with emitter.step(result.name, PHASE, "partition-table") as step:
        writer.finish(sink, written.head)
        result.written = written.written_bytes
        if request.verify:
            result.verified += len(written.head)  # finish reads it back too
        step.changed = True
        step.message = f"{sink.path} is ready"


def _configure(sink: writer.Sink, written: writer.Written, boot: FirstBoot, request: Request,
               result: CardResult, emitter: Emitter) -> None:
    fmt = request.format
    part = mbr.boot_partition(written.head[: mbr.SECTOR])
    if part is None:
        raise Failed("the image has no FAT boot partition for first-boot settings")
    if part.start < writer.HEAD:
        raise Failed("the boot partition starts inside the first MiB; not supported")
    os.fsync(sink.fd)
    done = bootconfig.apply(FatVolume(sink.path, part.start), boot, fmt,
                            request.merge_user_data)
    result.format, result.files, result.warnings = done.format, done.files, done.warnings
    chosen = "chosen" if fmt == "auto" else "forced"
    emitter.emit(result.name, PHASE, "format", Status.INFO,
                 message=f"{done.format} ({chosen}; {done.reason})")
    for warning in done.warnings:
        emitter.emit(result.name, PHASE, "format", Status.INFO,
                     message=f"warning: {warning}")
