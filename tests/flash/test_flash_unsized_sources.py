"""Sources that do not record the image size, several .xz streams, and missing mtools."""

from __future__ import annotations

import lzma
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import flashimages as images
import pytest
from flashhelp import digest, run

from pifleet.flash import compress, xz

Packed = Callable[[str, str], Path]
Loop = Callable[..., str]


@pytest.mark.parametrize("kind", ["gz", "bz2"])
def test_too_small_card_is_refused_for_containers_without_a_size(
        packed: Packed, loop: Loop, kind: str) -> None:
    assert compress.inspect(packed("raspios_bookworm", kind)).size is None
    device = loop(32, fill=b"old card " * 1000)
    before = digest(device)
    proc = run("flash", packed("raspios_bookworm", kind), device, "--allow-non-removable",
               "--yes", "--format", "none")
    assert proc.returncode == 2 and "too small" in proc.stderr, proc.stderr
    assert digest(device) == before


def concatenated_xz(raw: Path, out: Path) -> Path:
    """The image as two .xz streams with stream padding between and after them."""
    data = raw.read_bytes()
    half = len(data) // 2
    out.write_bytes(lzma.compress(data[:half]) + b"\0" * 8 + lzma.compress(data[half:])
                    + b"\0" * 4)
    return out


def test_xz_index_adds_up_every_stream(packed: Packed, tmp_path: Path) -> None:
    raw = packed("raspios_bookworm", "raw")
    two = concatenated_xz(raw, tmp_path / "two.img.xz")
    assert xz.index(two) == (raw.stat().st_size, 2)


def test_several_xz_streams_flash_whole(packed: Packed, tmp_path: Path) -> None:
    raw = packed("raspios_bookworm", "raw")
    two = concatenated_xz(raw, tmp_path / "two.img.xz")
    info = compress.inspect(two)
    assert b"".join(compress.chunks(two, info)) == raw.read_bytes()
    card = tmp_path / "card.img"
    proc = run("flash", two, card, "--format", "none", "--yes")
    assert proc.returncode == 0, proc.stderr
    layout = images.raspios_bookworm()
    assert images.root_partition(card, layout) == images.root_partition(raw, layout)


def test_first_boot_settings_without_mtools_is_bad_input(packed: Packed, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with what flash needs except mtools
    bin_dir.mkdir()
    for tool in ("lsblk", "findmnt", "xz", "openssl"):
        found = shutil.which(tool)
        if found:
            os.symlink(found, bin_dir / tool)
    card = tmp_path / "card.img"
    proc = subprocess.run(
        [sys.executable, "-m", "pifleet", "flash", str(packed("raspios_bookworm", "raw")),
         str(card), "--hostname", "brig", "--yes"],
        capture_output=True, text=True, env={**os.environ, "PATH": str(bin_dir)}, timeout=60)
    assert proc.returncode == 2 and "mtools" in proc.stderr, proc.stderr
    assert not card.exists()
