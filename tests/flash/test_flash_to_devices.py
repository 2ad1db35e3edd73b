"""`pifleet flash` and `pifleet devices` with loop devices as cards (root)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import flashimages as images
import pytest
from flashhelp import boot_volume, digest, fsck_fat, head_is_blank, run

Packed = Callable[[str, str], Path]
Loop = Callable[..., str]

OLD = b"old card contents " * 4096


def test_flash_a_loop_device(packed: Packed, loop: Loop, tmp_path: Path) -> None:
    device = loop(80, fill=OLD)
    proc = run("flash", packed("raspios_trixie", "xz"), device, "--hostname", "brig",
               "--allow-non-removable", "--yes")
    assert proc.returncode == 0, proc.stderr
    layout = images.raspios_trixie()
    assert images.root_partition(Path(device), layout) == images.root_partition(
        packed("raspios_trixie", "raw"), layout)
    assert b"hostname: brig" in boot_volume(device).read("user-data")
    fsck_fat(device, tmp_path)


def test_without_verify_and_with_a_bmap(packed: Packed, loop: Loop, tmp_path: Path) -> None:
    raw = packed("raspios_bookworm", "raw")
    bmap = tmp_path / "img.bmap"
    subprocess.run(["bmaptool", "create", "-o", str(bmap), str(raw)], check=True,
                   capture_output=True)
    device = loop(70, fill=OLD)
    proc = run("flash", packed("raspios_bookworm", "zst"), device, "--bmap", bmap,
               "--no-verify", "--format", "none", "--allow-non-removable", "-y")
    assert proc.returncode == 0, proc.stderr
    assert "verify" not in proc.stderr
    layout = images.raspios_bookworm()
    # Mapped ranges carry the image; the boot and root partitions are byte-identical.
    assert images.root_partition(Path(device), layout) == images.root_partition(raw, layout)
    fsck_fat(device, tmp_path)


def test_not_removable_is_refused_and_left_unchanged(packed: Packed, loop: Loop) -> None:
    device = loop(80, fill=OLD)
    before = digest(device)
    proc = run("flash", packed("raspios_bookworm", "xz"), device, "--yes")
    assert proc.returncode == 2
    assert device in proc.stderr and "not a removable disk" in proc.stderr
    assert digest(device) == before


def test_read_only_device_is_refused(packed: Packed, loop: Loop) -> None:
    device = loop(80, read_only=True, fill=OLD)
    before = digest(device)
    proc = run("flash", packed("raspios_bookworm", "xz"), device, "--allow-non-removable",
               "--yes")
    assert proc.returncode == 2 and "read-only" in proc.stderr
    assert digest(device) == before


def test_too_small_device_is_refused(packed: Packed, loop: Loop) -> None:
    device = loop(32, fill=OLD)
    before = digest(device)
    proc = run("flash", packed("raspios_bookworm", "gz"), device, "--allow-non-removable",
               "--yes", "--bmap", "/nonexistent.bmap")
    assert proc.returncode == 2  # unreadable bmap named first
    assert "/nonexistent.bmap" in proc.stderr
    proc = run("flash", packed("raspios_bookworm", "xz"), device, "--allow-non-removable",
               "--yes")
    assert proc.returncode == 2 and "too small" in proc.stderr
    assert digest(device) == before


def test_mounted_device_is_refused_then_unmounted_on_request(
        packed: Packed, loop: Loop, tmp_path: Path) -> None:
    device = loop(80)
    subprocess.run(["mkfs.ext4", "-q", "-F", device], check=True, capture_output=True)
    mount = tmp_path / "mnt"
    mount.mkdir()
    mounted = subprocess.run(["mount", device, str(mount)], capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount here: {mounted.stderr.decode().strip()}")
    loop.mounts.append(mount)  # type: ignore[attr-defined]
    # A mounted ext4 writes to its device by itself (journal, lazy inode-table init), so only
    # the first KiB, which ext4 never touches and a flash would overwrite first, is compared.
    with open(device, "r+b") as handle:
        handle.write(b"marker " * 146)
    before = digest(device, 1024)
    proc = run("flash", packed("raspios_bookworm", "xz"), device, "--allow-non-removable",
               "--yes")
    assert proc.returncode == 2
    assert "mounted" in proc.stderr and str(mount) in proc.stderr
    assert digest(device, 1024) == before
    proc = run("flash", packed("raspios_bookworm", "xz"), device, "--allow-non-removable",
               "--yes", "--unmount", "--hostname", "brig")
    assert proc.returncode == 0, proc.stderr
    assert str(mount) not in Path("/proc/self/mounts").read_text()
    assert not head_is_blank(device)


def test_two_devices_from_one_stream(packed: Packed, loop: Loop) -> None:
    devices = [loop(70, fill=OLD), loop(70, fill=OLD)]
    proc = run("flash", packed("hypriot_16", "bz2"), *devices, "--hostname", "brig",
               "--hostname", "sloop", "--allow-non-removable", "--yes")
    assert proc.returncode == 0, proc.stderr
    hosts = [boot_volume(d).read("device-init.yaml").decode() for d in devices]
    assert hosts == ["hostname: brig\n", "hostname: sloop\n"]


def test_partition_is_not_a_whole_disk(packed: Packed, loop: Loop, tmp_path: Path) -> None:
    proc = run("flash", packed("raspios_bookworm", "xz"), "/dev/null", "--yes")
    assert proc.returncode == 2 and "/dev/null" in proc.stderr
    proc = run("flash", packed("raspios_bookworm", "xz"), tmp_path, "--yes")
    assert proc.returncode == 2 and "directory" in proc.stderr


def test_system_disk_is_refused_always(packed: Packed) -> None:
    from pifleet.flash.devices import system_disks_linux

    disks = sorted(d for d in system_disks_linux() if Path(d).exists())
    if not disks:
        pytest.skip("no block device holds / here")
    proc = run("flash", packed("raspios_bookworm", "xz"), disks[0], "--allow-non-removable",
               "--yes")
    assert proc.returncode == 2 and "running system" in proc.stderr


def test_devices_lists_loop_devices_as_not_removable(loop: Loop) -> None:
    device = loop(40)
    proc = run("--json", "devices", "--all")
    assert proc.returncode == 0, proc.stderr
    rows = {row["path"]: row for row in map(json.loads, proc.stdout.splitlines())}
    assert device in rows
    assert rows[device]["removable"] is False and rows[device]["safe"] is False
    proc = run("--json", "devices")
    assert device not in proc.stdout
