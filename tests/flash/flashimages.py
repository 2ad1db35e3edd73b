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
    root_fs: str = "ext4"  # mkfs.<root_fs>
    root_options: tuple[str, ...] = ()  # for mkfs, e.g. ("-b", "1024")
    root_data_mib: int = 0  # more files in the root filesystem, in MiB
    label: str = "dos"  # or "gpt"
    other_mib: int = 0  # a third partition of random bytes and an unknown type

    @property
    def size(self) -> int:
        """Total image size in bytes (a GPT also needs its backup at the end)."""
        tail = 1 if self.label == "gpt" else 0
        return (self.boot_start + self.boot_size + self.root_size + self.other_mib + tail) * MIB

    @property
    def root_start(self) -> int:
        """Where the root partition starts, in bytes."""
        return (self.boot_start + self.boot_size) * MIB


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


def many_groups() -> Layout:
    """FAT16 boot; ext4 of eight 8 MiB groups in flex groups of four (the bitmaps of groups
    4-7 sit in group 4), half full, and an unknown third partition."""
    return Layout(boot_start=4, boot_size=16, root_size=64, fat_bits=16,
                  root_options=("-b", "4096", "-g", "2048", "-G", "4", "-N", "2048"),
                  root_data_mib=28, other_mib=4, boot_files={"cmdline.txt": CMDLINE})


def ext_1k_blocks() -> Layout:
    """ext4 with 1 KiB blocks (its first data block is 1) and several groups; FAT12 boot."""
    return Layout(boot_start=1, boot_size=3, root_size=24, fat_bits=12,
                  root_options=("-b", "1024", "-g", "4096"), root_data_mib=8,
                  boot_files={"cmdline.txt": CMDLINE})


def ext2_plain() -> Layout:
    """ext2 without flex_bg or uninit_bg: every group's bitmap is in the group itself."""
    return Layout(boot_start=4, boot_size=16, root_size=40, fat_bits=16, root_fs="ext2",
                  root_options=("-b", "4096", "-g", "2048"), root_data_mib=12,
                  boot_files={"cmdline.txt": CMDLINE})


def ext3_gpt() -> Layout:
    """A GPT disk; ext3 (a journal, no extents) root."""
    return Layout(boot_start=1, boot_size=36, root_size=32, root_fs="ext3", label="gpt",
                  root_options=("-b", "4096", "-g", "4096"), root_data_mib=10,
                  boot_files={"cmdline.txt": CMDLINE})


def ext4_meta_bg() -> Layout:
    """ext4 with meta_bg and 64-bit descriptors (no resize inode), sparse_super2."""
    return Layout(boot_start=4, boot_size=16, root_size=48, fat_bits=16,
                  root_options=("-b", "4096", "-g", "1024", "-O",
                                "meta_bg,64bit,^resize_inode,sparse_super2"),
                  root_data_mib=16, boot_files={"cmdline.txt": CMDLINE})


def ext4_bigalloc() -> Layout:
    """ext4 with bigalloc: not read by pifleet (its bitmaps count clusters): written whole."""
    return Layout(boot_start=4, boot_size=16, root_size=32, fat_bits=16,
                  root_options=("-b", "4096", "-O", "bigalloc", "-C", "16384"),
                  root_data_mib=4, boot_files={"cmdline.txt": CMDLINE})


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


def _table(layout: Layout) -> str:
    """sfdisk input: boot, root and the optional unknown partition."""
    gpt = layout.label == "gpt"
    types = (("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
              "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F") if gpt else
             ({32: "c", 16: "e", 12: "1"}[layout.fat_bits], "83", "da"))
    head = "label: gpt\n" if gpt else "label: dos\nlabel-id: 0x1234abcd\n"
    parts = [(layout.boot_start, layout.boot_size), (layout.boot_start + layout.boot_size,
                                                     layout.root_size)]
    if layout.other_mib:
        parts.append((layout.boot_start + layout.boot_size + layout.root_size,
                      layout.other_mib))
    return head + "".join(f"start={s * 2048}, size={n * 2048}, type={t}\n"
                          for (s, n), t in zip(parts, types, strict=False))


def build(path: Path, layout: Layout, seed: int = 1) -> Path:
    """Write the image: MBR, FAT boot partition with files, ext4 root with some files."""
    with path.open("wb") as handle:
        handle.truncate(layout.size)
    _run("sfdisk", "-q", str(path), data=_table(layout).encode())
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
        _more_files(rootdir / "usr", layout.root_data_mib)
        root = Path(tmp) / "root.ext4"
        _run(f"mkfs.{layout.root_fs}", "-q", "-F", "-L", "rootfs", *layout.root_options,
             "-d", str(rootdir), str(root), f"{layout.root_size}M")
        with path.open("r+b") as out:
            _copy_sparse(fat.read_bytes(), out, boot_offset)
            _copy_sparse(root.read_bytes(), out, layout.root_start)
            if layout.other_mib:
                out.seek(layout.root_start + layout.root_size * MIB)
                out.write(os.urandom(layout.other_mib * MIB))
    return path


def _more_files(folder: Path, mib: int) -> None:
    """`mib` MiB in files of 4 KiB to 4 MiB, random and text, with a few zero blocks inside
    files (which stay in use: a zero block in use must be written too)."""
    folder.mkdir()
    sizes = [4096, 65536, 1 << 20, 4 << 20, 12288, 300000]
    left, index = mib * MIB, 0
    while left > 0:
        size = min(sizes[index % len(sizes)], left)
        data = os.urandom(size // 2) + (b"line of text %d\n" % index) * (size // 32)
        data = (data + bytes(8192) + data)[:size] if size > 16384 else data[:size]
        (folder / f"file{index}.bin").write_bytes(data.ljust(size, b"x"))
        left -= size
        index += 1


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
        handle.seek(layout.root_start)
        return handle.read(layout.root_size * MIB)


def compress(path: Path, kind: str) -> Path:
    """A compressed copy made with the standard tools (zip holds the one image)."""
    if kind == "zip":
        out = path.with_name(path.name + ".zip")
        import zipfile

        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(path, path.name)
        return out
    # "xzb": .xz in 1 MiB blocks, as `xz -T` makes them (decoded a block per core, and a
    # block in free space not at all).
    tool = {"xz": ["xz", "-T1", "-1"], "xzb": ["xz", "-T2", "-1", "--block-size=1MiB"],
            "gz": ["gzip", "-1"], "bz2": ["bzip2", "-1"], "zst": ["zstd", "-q", "-1"]}[kind]
    out = path.with_name(path.name + "." + kind)
    with out.open("wb") as handle:
        subprocess.run([*tool, "-c", str(path)], check=True, stdout=handle)
    return out
