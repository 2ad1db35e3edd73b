"""Fixtures for the flash tests: synthetic images, loop devices, the CLI as a subprocess.

Loop devices are always detached and mounts removed, even when a test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import flashimages as images
import pytest

TOOLS = ("sfdisk", "mkfs.vfat", "mkfs.ext4", "mcopy", "losetup", "fsck.fat", "xz", "zstd",
         "bzip2", "bmaptool")

pytestmark = pytest.mark.root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    for item in items:
        if "tests/flash/" not in str(item.fspath):
            continue
        item.add_marker(pytest.mark.root)
        if missing:
            item.add_marker(pytest.mark.skip(reason=f"missing tools: {', '.join(missing)} "
                                                    f"(scripts/setup installs them)"))


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("images")


@pytest.fixture(scope="session")
def image(image_dir: Path) -> Callable[[str], Path]:
    """Build (once per session) the synthetic image for a layout name from tests.flash.images."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            layout = getattr(images, name)()
            built[name] = images.build(image_dir / f"{name}.img", layout)
        return built[name]

    return get


@pytest.fixture(scope="session")
def packed(image: Callable[[str], Path]) -> Callable[[str, str], Path]:
    """The image for a layout, compressed one way (cached per session)."""
    done: dict[tuple[str, str], Path] = {}

    def get(name: str, kind: str) -> Path:
        if (name, kind) not in done:
            raw = image(name)
            done[(name, kind)] = raw if kind == "raw" else images.compress(raw, kind)
        return done[(name, kind)]

    return get


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Make loop devices over fresh files; detached (and unmounted) at the end, always."""
    if os.geteuid() != 0:
        pytest.skip("loop devices need root")
    made: list[str] = []
    mounts: list[Path] = []

    def make(size_mib: int, *, read_only: bool = False, fill: bytes = b"") -> str:
        backing = tmp_path / f"loop{len(made)}.bin"
        with backing.open("wb") as handle:
            handle.truncate(size_mib * images.MIB)
            if fill:
                handle.write(fill)
        args = ["losetup", "--find", "--show", *(["-r"] if read_only else []), str(backing)]
        device = subprocess.run(args, check=True, capture_output=True,
                                text=True).stdout.strip()
        made.append(device)
        return device

    def attach(path: Path | str, *, offset: int = 0) -> str:
        """A loop device over an existing file or device (`offset` bytes in)."""
        args = ["losetup", "--find", "--show", *(["-o", str(offset)] if offset else []),
                str(path)]
        device = subprocess.run(args, check=True, capture_output=True,
                                text=True).stdout.strip()
        made.append(device)
        return device

    def mount(device: str, where: Path) -> Path:
        """Mount `device` (ext4) at `where`; unmounted at the end, before the detach."""
        where.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", device, str(where)], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount here: {done.stderr.decode().strip()}")
        mounts.append(where)
        return where

    make.mounts = mounts  # type: ignore[attr-defined]
    make.attach = attach  # type: ignore[attr-defined]
    make.mount = mount  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        for where in reversed(mounts):
            subprocess.run(["umount", str(where)], capture_output=True, check=False)
        # Newest first: a loop device over another one goes before the one beneath it.
        for device in reversed(made):
            subprocess.run(["losetup", "-d", device], capture_output=True, check=False)
