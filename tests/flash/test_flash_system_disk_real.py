"""The disk under a mounted filesystem, found on real loop devices, partitions and dm (root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pifleet.flash import devices


def _sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def partitioned(tmp_path: Path) -> Iterator[tuple[str, str, list[Path], list[str]]]:
    """A loop disk with one partition; mounts and dm names added by the test are undone."""
    if os.geteuid() != 0:
        pytest.skip("loop devices need root")
    backing = tmp_path / "disk.bin"
    with backing.open("wb") as handle:
        handle.truncate(48 << 20)
    subprocess.run(["sfdisk", "-q", str(backing)], input="start=2048, type=83\n", text=True,
                   check=True, capture_output=True)
    disk = _sh("losetup", "--find", "--show", "--partscan", str(backing))
    mounts: list[Path] = []
    mapped: list[str] = []
    try:
        part = f"{disk}p1"
        for _ in range(20):  # the partition node appears a moment after --partscan
            if Path(part).exists():
                break
            time.sleep(0.1)
        if not Path(part).exists():
            pytest.skip("this kernel made no partition for the loop device")
        yield disk, part, mounts, mapped
    finally:
        for mount in reversed(mounts):
            subprocess.run(["umount", str(mount)], capture_output=True, check=False)
        for name in reversed(mapped):
            subprocess.run(["dmsetup", "remove", name], capture_output=True, check=False)
        subprocess.run(["losetup", "-d", disk], capture_output=True, check=False)


def _mount(device: str, where: Path, mounts: list[Path]) -> None:
    subprocess.run(["mkfs.ext4", "-q", "-F", device], check=True, capture_output=True)
    where.mkdir()
    done = subprocess.run(["mount", device, str(where)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.decode().strip()}")
    mounts.append(where)


def test_filesystem_on_a_partition(partitioned: tuple[str, str, list[Path], list[str]],
                                   tmp_path: Path) -> None:
    disk, part, mounts, _ = partitioned
    _mount(part, tmp_path / "mnt", mounts)
    found = devices.system_disks_linux((str(tmp_path / "mnt"),))
    assert disk in found and part in found
    (listed,) = [d for d in devices.parse_lsblk(devices.lsblk_json(disk), found)]
    assert listed.system and not listed.safe


def test_filesystem_on_device_mapper_over_a_partition(
        partitioned: tuple[str, str, list[Path], list[str]], tmp_path: Path) -> None:
    if shutil.which("dmsetup") is None:
        pytest.skip("dmsetup missing (scripts/setup installs it)")
    disk, part, mounts, mapped = partitioned
    name = f"pifleet-test-{os.getpid()}"
    sectors = int(_sh("blockdev", "--getsz", part))
    made = subprocess.run(["dmsetup", "create", name, "--table",
                           f"0 {sectors} linear {part} 0"], capture_output=True, text=True,
                          check=False)
    if made.returncode != 0:
        pytest.skip(f"device-mapper unavailable: {made.stderr.strip()}")
    mapped.append(name)
    _mount(f"/dev/mapper/{name}", tmp_path / "mnt", mounts)
    found = devices.system_disks_linux((str(tmp_path / "mnt"),))
    assert disk in found and part in found


def test_filesystem_on_the_whole_disk(loop: Callable[..., str], tmp_path: Path) -> None:
    disk = loop(40)
    _mount(disk, tmp_path / "mnt", loop.mounts)  # type: ignore[attr-defined]
    assert devices.system_disks_linux((str(tmp_path / "mnt"),)) == {disk}


def test_nothing_mounted_there(tmp_path: Path) -> None:
    assert devices.disks_under(str(tmp_path / "not-a-mount")) == set()
