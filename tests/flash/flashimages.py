"""Synthetic Raspberry Pi images built with the real tools: sfdisk, mkfs.vfat, mkfs.ext4, mtools."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

MIB = 1024 * 1024


@dataclass
class Layout:
    """Where the partitions go (MiB) and what the boot partition holds."""

    boot_start: int = 8
    boot_size: int = 36  # FAT32 needs about 33 MiB at least
    root_size: int = 20
    fat_bits: int = 32
    boot_files: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Total image size in bytes."""
        return (self.boot_start + self.boot_size + self.root_size) * MIB


CMDLINE = ("console=serial0,115200 console=tty1 root=PARTUUID=1234abcd-02 rootfstype=ext4 "
           "fsck.repair=yes rootwait\n")
CONFIG = "# config.txt\narm_64bit=1\ndtparam=audio=on\n"


def raspios_bookworm() -> Layout:
    """Raspberry Pi OS Bookworm-like: issue.txt, no cloud-init seed (firstrun)."""
    return Layout(boot_files={"cmdline.txt": CMDLINE, "config.txt": CONFIG,
                              "issue.txt": "Raspberry Pi reference 2024-11-19\n"})


def raspios_trixie() -> Layout:
    """Raspberry Pi OS Trixie-like: issue.txt and cloud-init seed files."""
    files = raspios_bookworm().boot_files | {
        "user-data": "#cloud-config\n", "meta-data": "instance-id: stock\n",
        "network-config": "version: 2\n"}
    return Layout(boot_files=files)


def old_layout() -> Layout:
    """The older 4 MiB layout (Bullseye and earlier), FAT16, without cloud-init."""
    return Layout(boot_start=4, boot_size=16, root_size=12, fat_bits=16,
                  boot_files={"cmdline.txt": CMDLINE, "config.txt": CONFIG,
                              "issue.txt": "Raspberry Pi reference 2021-10-30\n"})


# The shape of HypriotOS 1.7's own /boot/user-data (hypriot/image-builder-rpi
# builder/files/boot/user-data): the pirate user with the distribution's groups and password,
# a package list and first-boot commands. `sudo` stands for a package (already installed in
# the test root, so cloud-init's package step needs no network); the last command leaves a
# mark the tests look for.
HYPRIOT_USER_DATA = """#cloud-config
# vim: syntax=yaml
hostname: black-pearl
manage_etc_hosts: true
users:
  - name: pirate
    gecos: "Hypriot Pirate"
    sudo: ALL=(ALL) NOPASSWD:ALL
    shell: /bin/bash
    groups: users,docker,video
    plain_text_passwd: hypriot
    lock_passwd: false
    ssh_pwauth: true
    chpasswd: { expire: false }
package_upgrade: false
packages:
  - sudo
runcmd:
  - 'systemctl restart avahi-daemon'
  - 'touch /var/lib/hypriot-runcmd-done'
"""


def hypriot_17() -> Layout:
    """HypriotOS 1.7-like: cloud-init seed in /boot, no issue.txt."""
    return Layout(boot_start=1, boot_size=36, root_size=16, boot_files={
        "cmdline.txt": "dwc_otg.lpm_enable=0 console=tty1 root=/dev/mmcblk0p2 rootwait\n",
        "config.txt": CONFIG, "user-data": HYPRIOT_USER_DATA,
        "meta-data": "instance-id: black-pearl\n"})


def hypriot_16() -> Layout:
    """HypriotOS 1.0-1.6-like: device-init.yaml."""
    return Layout(boot_start=4, boot_size=16, root_size=12, fat_bits=16, boot_files={
        "cmdline.txt": "console=tty1 root=/dev/mmcblk0p2\n", "config.txt": CONFIG,
        "device-init.yaml": "hostname: black-pearl\n"})


def hypriot_old() -> Layout:
    """HypriotOS before 1.0: occidentalis.txt."""
    return Layout(boot_start=4, boot_size=16, root_size=12, fat_bits=16, boot_files={
        "cmdline.txt": "console=tty1 root=/dev/mmcblk0p2\n", "config.txt": CONFIG,
        "occidentalis.txt": "hostname=black-pearl\n"})


def bare() -> Layout:
    """A boot partition with nothing that names a first-boot format."""
    return Layout(boot_files={"cmdline.txt": CMDLINE, "config.txt": CONFIG})


def _run(*args: str, data: bytes | None = None) -> None:
    subprocess.run(args, check=True, capture_output=True, input=data)


def build(path: Path, layout: Layout, seed: int = 1) -> Path:
    """Write the image: MBR, FAT boot partition with files, ext4 root with some files."""
    with path.open("wb") as handle:
        handle.truncate(layout.size)
    fat_type = "c" if layout.fat_bits == 32 else "e"
    table = (f"label: dos\nlabel-id: 0x1234abcd\n"
             f"start={layout.boot_start * 2048}, size={layout.boot_size * 2048}, "
             f"type={fat_type}\n"
             f"start={(layout.boot_start + layout.boot_size) * 2048}, "
             f"size={layout.root_size * 2048}, type=83\n")
    _run("sfdisk", "-q", str(path), data=table.encode())
    boot_offset = layout.boot_start * MIB
    # A separate FAT image, then copied in: mkfs.vfat's --offset does not size the volume.
    with tempfile.TemporaryDirectory() as tmp:
        fat = Path(tmp) / "boot.fat"
        _run("mkfs.vfat", "-C", "-F", str(layout.fat_bits), "-n", "bootfs", str(fat),
             str(layout.boot_size * 1024))
        for name, text in layout.boot_files.items():
            src = Path(tmp) / name
            src.write_text(text)
            _run("mcopy", "-i", str(fat), str(src), f"::/{name}")
        # Some kernel-sized data, so the boot partition is not all zeros.
        blob = Path(tmp) / "kernel8.img"
        blob.write_bytes(os.urandom(256 * 1024))
        _run("mcopy", "-i", str(fat), str(blob), "::/kernel8.img")
        rootdir = Path(tmp) / "root"
        (rootdir / "etc").mkdir(parents=True)
        (rootdir / "etc" / "hostname").write_text("raspberrypi\n")
        (rootdir / "var").mkdir()
        (rootdir / "var" / "data.bin").write_bytes(
            (seed.to_bytes(4, "little") + os.urandom(4092)) * 512)
        root = Path(tmp) / "root.ext4"
        _run("mkfs.ext4", "-q", "-F", "-L", "rootfs", "-d", str(rootdir), str(root),
             f"{layout.root_size}M")
        with path.open("r+b") as out:
            _copy_sparse(fat.read_bytes(), out, boot_offset)
            _copy_sparse(root.read_bytes(), out, (layout.boot_start + layout.boot_size) * MIB)
    return path


def _copy_sparse(data: bytes, out: BinaryIO, offset: int, block: int = 4096) -> None:
    """Copy leaving zero blocks as holes, as real image builders do (bmaptool maps the rest)."""
    zero = bytes(block)
    for start in range(0, len(data), block):
        piece = data[start:start + block]
        if piece != zero[: len(piece)]:
            out.seek(offset + start)
            out.write(piece)


def root_partition(path: Path, layout: Layout) -> bytes:
    """The bytes of the root partition of an image or a card."""
    with path.open("rb") as handle:
        handle.seek((layout.boot_start + layout.boot_size) * MIB)
        return handle.read(layout.root_size * MIB)


def compress(path: Path, kind: str) -> Path:
    """A compressed copy made with the standard tools (zip holds the one image)."""
    if kind == "zip":
        out = path.with_name(path.name + ".zip")
        import zipfile

        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(path, path.name)
        return out
    tool = {"xz": ["xz", "-T1", "-1"], "gz": ["gzip", "-1"], "bz2": ["bzip2", "-1"],
            "zst": ["zstd", "-q", "-1"]}[kind]
    out = path.with_name(path.name + "." + kind)
    with out.open("wb") as handle:
        subprocess.run([*tool, "-c", str(path)], check=True, stdout=handle)
    return out
