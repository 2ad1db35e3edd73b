"""Block maps in the XML format of Debian's bmap-tools (versions 1.x and 2.x).

A map names the ranges of an image that hold data, each with a checksum; everything else is
known to be zeros. We read the format ourselves: bmap-tools is a benchmark anchor, not a library.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pifleet.errors import BadInput


@dataclass(frozen=True)
class Range:
    """Blocks `first`..`last` inclusive, with the checksum of their bytes (may be empty)."""

    first: int
    last: int
    checksum: str


@dataclass(frozen=True)
class BlockMap:
    """A parsed bmap file."""

    image_size: int
    block_size: int
    blocks: int
    mapped: int
    algorithm: str  # "sha256", "sha1" or "" when ranges carry no checksums
    ranges: tuple[Range, ...]

    def byte_ranges(self) -> list[tuple[int, int, str]]:
        """(start, end, checksum) in bytes, end exclusive and clipped to the image size."""
        return [(r.first * self.block_size,
                 min((r.last + 1) * self.block_size, self.image_size), r.checksum)
                for r in self.ranges]

    @property
    def mapped_bytes(self) -> int:
        """How many bytes the map says hold data."""
        return sum(end - start for start, end, _ in self.byte_ranges())


def load(path: Path) -> BlockMap:
    """Parse a bmap file; BadInput naming the file and the reason if it is unusable."""
    try:
        root = ET.fromstring(path.read_bytes())
    except (OSError, ET.ParseError) as exc:
        raise BadInput(f"{path}: unreadable bmap file ({exc})") from exc
    return parse(root, str(path))


def parse(root: ET.Element, name: str = "bmap") -> BlockMap:
    """Build a BlockMap from the XML tree, checking it is consistent."""
    def number(tag: str) -> int:
        text = (root.findtext(tag) or "").strip()
        if not text.isdigit():
            raise BadInput(f"{name}: bmap has no valid <{tag}>")
        return int(text)

    if root.tag != "bmap":
        raise BadInput(f"{name}: not a bmap file (root element <{root.tag}>)")
    version = root.get("version", "")
    if not re.fullmatch(r"[12]\.\d+", version):
        raise BadInput(f"{name}: unsupported bmap version {version!r}")
    image_size, block_size = number("ImageSize"), number("BlockSize")
    blocks, mapped = number("BlocksCount"), number("MappedBlocksCount")
    if block_size <= 0 or (image_size + block_size - 1) // block_size != blocks:
        raise BadInput(f"{name}: bmap sizes disagree (ImageSize, BlockSize, BlocksCount)")
    algorithm = (root.findtext("ChecksumType") or ("sha1" if version.startswith("1.") else "")
                 ).strip()
    if algorithm not in ("sha256", "sha1", ""):
        raise BadInput(f"{name}: unsupported bmap checksum type {algorithm!r}")
    block_map = root.find("BlockMap")
    if block_map is None:
        raise BadInput(f"{name}: bmap has no <BlockMap>")
    ranges: list[Range] = []
    attribute = "chksum" if version.startswith("2.") else "sha1"
    for element in block_map.findall("Range"):
        text = (element.text or "").strip()
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", text)
        if not match:
            raise BadInput(f"{name}: bad bmap range {text!r}")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if last < first or last >= blocks or (ranges and first <= ranges[-1].last):
            raise BadInput(f"{name}: bmap range {text!r} is out of order or beyond the image")
        ranges.append(Range(first, last, element.get(attribute, "")))
    if sum(r.last - r.first + 1 for r in ranges) != mapped:
        raise BadInput(f"{name}: bmap ranges do not add up to MappedBlocksCount")
    return BlockMap(image_size, block_size, blocks, mapped, algorithm, tuple(ranges))


def beside(image: Path) -> Path | None:
    """`IMAGE.bmap` next to the image, trying the name with and without compression suffix."""
    candidates = [image.with_name(image.name + ".bmap")]
    stem = image.name
    for suffix in (".xz", ".gz", ".bz2", ".zst", ".zip"):
        if stem.endswith(suffix):
            candidates.append(image.with_name(stem[: -len(suffix)] + ".bmap"))
    if stem.endswith(".img"):
        candidates.append(image.with_name(stem[:-4] + ".bmap"))
    return next((c for c in candidates if c.is_file()), None)
