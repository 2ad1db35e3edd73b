"""Writing only what the filesystems use, checked from outside on a used card.

The card is a loop device over a file of random bytes (a used card: stale data everywhere).
After a write, a 4 KiB block that equals the image's block was written; every other block still
holds random bytes. Then:
- what was written covers every range `bmaptool create` maps in the same image made sparse
  (`fallocate --dig-holes`), and what it writes beyond them is filesystem metadata (from
  dumpe2fs, debugfs and fsck.fat), the first MiB, or space outside the known filesystems;
- the written blocks are exactly those pifleet's own map names, whether the image is read
  where needed (raw) or streamed (.xz, .gz);
- the device counts (sysfs `stat`) no more bytes written than that, zero-outs included;
- the filesystems read back clean through their own tools despite the random free space:
  `e2fsck -fn`, `fsck.fat -n`, every file's content through debugfs and mtools.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import flashimages as images
import pytest
from flashhelp import run

from pifleet.flash.maps import Usage
from pifleet.flash.maps.ranges import Range, align_out, difference, union

Image = Callable[[str], Path]
Packed = Callable[[str, str], Path]
Loop = Callable[..., str]

BLOCK = 4096
MIB = images.MIB
LAYOUTS = ["raspios_bookworm", "many_groups", "ext_1k_blocks", "ext2_plain", "ext3_gpt",
           "ext4_meta_bg"]


def _random_card(loop: Loop, tmp_path: Path, size: int) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    backing = tmp_path / "card.bin"
    with backing.open("wb") as handle:
        for _ in range(size // MIB + 1):
            handle.write(os.urandom(MIB))
    return loop.attach(backing)  # type: ignore[attr-defined, no-any-return]


def _blocks(path: Path | str, size: int) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        for _ in range(-(-size // BLOCK)):
            yield handle.read(BLOCK)


def _written(card: str, image: Path) -> list[Range]:
    """The blocks of the card that equal the image's (random ones never do)."""
    size = image.stat().st_size
    found = []
    for index, (mine, theirs) in enumerate(zip(_blocks(card, size), _blocks(image, size),
                                               strict=True)):
        if mine[: len(theirs)] == theirs:
            found.append((index * BLOCK, min((index + 1) * BLOCK, size)))
    return union(found)


def _bmap_ranges(image: Path, tmp_path: Path) -> list[Range]:
    sparse = tmp_path / "sparse.img"
    shutil.copyfile(image, sparse)
    subprocess.run(["fallocate", "--dig-holes", str(sparse)], check=True)
    text = subprocess.run(["bmaptool", "create", str(sparse)], check=True,
                          capture_output=True, text=True).stdout
    size = int(re.search(r"<BlockSize>\s*(\d+)", text).group(1))  # type: ignore[union-attr]
    found = []
    for match in re.finditer(r"<Range[^>]*>\s*(\d+)(?:-(\d+))?\s*</Range>", text):
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        found.append((first * size, (last + 1) * size))
    sparse.unlink()
    return union(found)


def _partitions(image: Path) -> list[tuple[int, int, str]]:
    """(start, end, type) from sfdisk's own reading of the table."""
    import json

    table = json.loads(subprocess.run(["sfdisk", "--json", str(image)], check=True,
                                      capture_output=True, text=True).stdout)["partitiontable"]
    sector = table.get("sectorsize", 512)
    return [(p["start"] * sector, (p["start"] + p["size"]) * sector, p["type"])
            for p in table["partitions"]]


def _extract(image: Path, start: int, end: int, out: Path) -> Path:
    with image.open("rb") as handle, out.open("wb") as copy:
        handle.seek(start)
        copy.write(handle.read(end - start))
    return out


def _ext_metadata(fs: Path, offset: int) -> list[Range]:
    """Every metadata block dumpe2fs lists, and the journal's blocks (debugfs)."""
    head = subprocess.run(["dumpe2fs", "-h", str(fs)], check=True, capture_output=True,
                          text=True).stdout
    block = int(re.search(r"Block size:\s+(\d+)", head).group(1))  # type: ignore[union-attr]
    groups = subprocess.run(["dumpe2fs", str(fs)], check=True, capture_output=True,
                            text=True).stdout
    found = [(0, 1)]
    pattern = (r"(?:superblock|Group descriptors|Reserved GDT blocks|Block bitmap|Inode bitmap"
               r"|Inode table) at (\d+)(?:-(\d+))?")
    for match in re.finditer(pattern, groups):
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        found.append((first, last + 1))
    if "has_journal" in head:
        journal = subprocess.run(["debugfs", "-R", "blocks <8>", str(fs)], check=True,
                                 capture_output=True, text=True).stdout.split()
        found += [(int(b), int(b) + 1) for b in journal]
    return union((offset + s * block, offset + e * block) for s, e in found)


def _fat_metadata(fs: Path, offset: int) -> list[Range]:
    """Reserved sectors, the FATs and the root directory: up to where fsck.fat says the data
    area starts."""
    text = subprocess.run(["fsck.fat", "-n", "-v", str(fs)], capture_output=True,
                          text=True).stdout
    data = int(re.search(r"Data area starts at byte (\d+)", text).group(1))  # type: ignore[union-attr]
    return [(offset, offset + data)]


def _allowed_extra(image: Path, tmp_path: Path) -> list[Range]:
    """What may be written beyond the bmap: the first MiB, gaps, unknown partitions and
    filesystem metadata, each found by the filesystems' own tools."""
    size = image.stat().st_size
    parts = _partitions(image)
    allowed = [(0, MIB)]
    allowed += difference([(0, size)], union((s, e) for s, e, _ in parts))
    for start, end, _ in parts:
        fs = _extract(image, start, end, tmp_path / "part.bin")
        magic = fs.read_bytes()[1024 + 56: 1024 + 58]
        if magic == b"\x53\xef":
            allowed += _ext_metadata(fs, start)
        elif subprocess.run(["fsck.fat", "-n", str(fs)], capture_output=True).returncode == 0:
            allowed += _fat_metadata(fs, start)
        else:
            allowed.append((start, end))  # not a filesystem: written whole
        fs.unlink()
    return align_out(union(allowed), BLOCK)


def _writes(device: str) -> int:
    """Bytes the block device counts as written (sysfs stat: sectors, zero-outs included)."""
    stat = Path(f"/sys/block/{Path(device).name}/stat").read_text().split()
    return int(stat[6]) * 512


def _check_filesystems(card: str, image: Path, loop: Loop, tmp_path: Path) -> None:
    """Every filesystem of the card reads back clean, with the image's files in it."""
    for index, (start, end, _) in enumerate(_partitions(image)):
        magic = _extract(image, start, start + 2048, tmp_path / "probe.bin").read_bytes()
        if magic[1024 + 56: 1024 + 58] == b"\x53\xef":
            part = loop.attach(card, offset=start)  # type: ignore[attr-defined]
            subprocess.run(["losetup", "--set-capacity", part], check=True)
            fsck = subprocess.run(["e2fsck", "-fn", part], capture_output=True, text=True)
            assert fsck.returncode == 0, fsck.stdout + fsck.stderr
            mine, theirs = tmp_path / f"card{index}", tmp_path / f"image{index}"
            for source, out in ((part, mine), (str(_extract(image, start, end, tmp_path /
                                                              "ext.bin")), theirs)):
                out.mkdir()
                subprocess.run(["debugfs", "-R", f"rdump / {out}", source], check=True,
                               capture_output=True)
            _same_tree(mine, theirs)
        elif magic[510:512] == b"\x55\xaa":
            copy = _extract(Path(card), start, end, tmp_path / "fat.bin")
            fsck = subprocess.run(["fsck.fat", "-n", str(copy)], capture_output=True,
                                  text=True)
            assert fsck.returncode == 0, fsck.stdout + fsck.stderr
            mine, theirs = tmp_path / f"card{index}", tmp_path / f"image{index}"
            for source, out in ((card, mine), (str(image), theirs)):
                out.mkdir()
                subprocess.run(["mcopy", "-s", "-n", "-i", f"{source}@@{start}", "::/",
                                str(out)], check=True, capture_output=True,
                               env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
            _same_tree(mine, theirs)


def _same_tree(a: Path, b: Path) -> None:
    names_a = sorted(p.relative_to(a) for p in a.rglob("*"))
    names_b = sorted(p.relative_to(b) for p in b.rglob("*"))
    assert names_a == names_b and names_a
    files = [str(n) for n in names_a if (a / n).is_file()]
    _, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert mismatch == [] and errors == []


@pytest.mark.parametrize(("layout", "kind"), [(name, "raw") for name in LAYOUTS] + [
    ("raspios_bookworm", "xz"), ("many_groups", "xzb")])
def test_a_used_card_gets_what_the_filesystems_use(packed: Packed, loop: Loop, tmp_path: Path,
                                                   layout: str, kind: str) -> None:
    image = packed(layout, "raw")
    size = image.stat().st_size
    card = _random_card(loop, tmp_path, size)
    before = _writes(card)
    proc = run("flash", packed(layout, kind), card, "--format", "none",
               "--allow-non-removable", "--yes")
    assert proc.returncode == 0, proc.stderr
    written = _written(card, image)
    # pifleet's own map, read from the image: exactly what reached the card.
    fd = os.open(image, os.O_RDONLY)
    try:
        expected = Usage.scan(fd, size).needed(0, size)
    finally:
        os.close(fd)
    assert written == expected
    # Every byte bmaptool would write is written; the rest is metadata, gaps, the head.
    bmap = _bmap_ranges(image, tmp_path)
    assert difference(bmap, written) == []
    extra = difference(written, bmap)
    assert difference(extra, _allowed_extra(image, tmp_path)) == []
    # Free space was left alone, and the device saw no more writes than that.
    total = sum(e - s for s, e in written)
    assert total < size * 0.8
    assert _writes(card) - before <= total + MIB  # + the first MiB blanked at the start
    _check_filesystems(card, image, loop, tmp_path)
    assert f"{total} of {size} bytes" in proc.stderr


def test_streams_decide_as_their_maps_pass(packed: Packed, loop: Loop, tmp_path: Path) -> None:
    """gzip and zstd streams (no recorded size for gzip) get the same ranges as the raw
    image: the maps of flex group 1 (groups 4-7) arrive in the middle of the stream."""
    image = packed("many_groups", "raw")
    size = image.stat().st_size
    results = []
    for kind in ("raw", "gz", "zst"):
        card = _random_card(loop, tmp_path / kind, size)
        proc = run("flash", packed("many_groups", kind), card, "--format", "none",
                   "--allow-non-removable", "--yes")
        assert proc.returncode == 0, proc.stderr
        results.append(_written(card, image))
    assert results[0] == results[1] == results[2]


def test_full_writes_every_byte(image: Image, loop: Loop, tmp_path: Path) -> None:
    source = image("many_groups")
    size = source.stat().st_size
    card = _random_card(loop, tmp_path, size)
    proc = run("flash", source, card, "--format", "none", "--full", "--allow-non-removable",
               "--yes")
    assert proc.returncode == 0, proc.stderr
    assert _written(card, source) == [(0, size)]


def test_an_unknown_filesystem_is_written_whole(image: Image, loop: Loop, tmp_path: Path
                                                ) -> None:
    """bigalloc counts clusters in its bitmaps: not read by pifleet, so written whole."""
    source = image("ext4_bigalloc")
    layout = images.ext4_bigalloc()
    card = _random_card(loop, tmp_path, source.stat().st_size)
    proc = run("flash", source, card, "--format", "none", "--allow-non-removable", "--yes")
    assert proc.returncode == 0, proc.stderr
    root = (layout.root_start, layout.root_start + layout.root_size * MIB)
    assert difference([root], _written(card, source)) == []
    _check_filesystems(card, source, loop, tmp_path)


def test_a_deleted_files_blocks_are_not_written(image: Image, loop: Loop, tmp_path: Path
                                                ) -> None:
    """Blocks freed in the image still hold the deleted file's bytes: a bmap of the image
    maps them (they are not zero), pifleet leaves them out, and the card is still clean."""
    source = tmp_path / "deleted.img"
    shutil.copyfile(image("many_groups"), source)
    layout = images.many_groups()
    root = _extract(source, layout.root_start, layout.root_start + layout.root_size * MIB,
                    tmp_path / "root.ext4")
    subprocess.run(["debugfs", "-w", "-R", "rm /usr/file3.bin", str(root)], check=True,
                   capture_output=True)
    with source.open("r+b") as handle:
        handle.seek(layout.root_start)
        handle.write(root.read_bytes())
    card = _random_card(loop, tmp_path, source.stat().st_size)
    proc = run("flash", source, card, "--format", "none", "--allow-non-removable", "--yes")
    assert proc.returncode == 0, proc.stderr
    skipped = difference(_bmap_ranges(source, tmp_path), _written(card, source))
    assert sum(e - s for s, e in skipped) >= 4 * MIB - 2 * BLOCK  # file3.bin was 4 MiB
    _check_filesystems(card, source, loop, tmp_path)


@pytest.mark.parametrize(("layout", "files"), [
    ("raspios_bookworm", {"firstrun.sh", "cmdline.txt"}),
    ("hypriot_17", {"user-data", "meta-data"}),
])
def test_first_boot_files_on_a_used_card(image: Image, loop: Loop, tmp_path: Path,
                                         layout: str, files: set[str]) -> None:
    """mtools adds the first-boot files into free clusters that hold random bytes: the boot
    partition stays clean and lists exactly the image's files and pifleet's."""
    source = image(layout)
    card = _random_card(loop, tmp_path, source.stat().st_size)
    proc = run("flash", source, card, "--hostname", "brig", "--allow-non-removable", "--yes")
    assert proc.returncode == 0, proc.stderr
    start, end, _ = _partitions(source)[0]
    copy = _extract(Path(card), start, end, tmp_path / "fat.bin")
    fsck = subprocess.run(["fsck.fat", "-n", str(copy)], capture_output=True, text=True)
    assert fsck.returncode == 0 and "differ" not in fsck.stdout, fsck.stdout + fsck.stderr
    listed = subprocess.run(["mdir", "-b", "-i", str(copy), "::/"], capture_output=True,
                            text=True, check=True).stdout.split()
    names = {line.removeprefix("::/") for line in listed}
    expected = set(getattr(images, layout)().boot_files) | {"kernel8.img"} | files
    assert names == expected
    assert b"brig" in subprocess.run(["mtype", "-i", str(copy), f"::/{sorted(files)[-1]}"],
                                     capture_output=True, check=True).stdout
