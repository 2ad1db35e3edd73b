"""Disks as the operating system lists them: lsblk JSON on Linux, diskutil plists on macOS.

Parsers take the tools' output as text so they are tested on recorded outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

LSBLK_COLUMNS = "NAME,TYPE,RM,HOTPLUG,TRAN,SUBSYSTEMS,RO,SIZE,MODEL,MOUNTPOINTS,PKNAME"


@dataclass
class Disk:
    """One whole disk and what decides whether it is a safe flash target."""

    path: str
    size: int
    model: str = ""
    transport: str = ""
    removable: bool = False
    read_only: bool = False
    kind: str = "disk"
    mountpoints: list[str] = field(default_factory=list)
    system: bool = False

    @property
    def safe(self) -> bool:
        """Removable, writable, not the system disk."""
        return self.removable and not self.read_only and not self.system

    def describe(self) -> str:
        """`/dev/sdb  SanDisk Ultra  31.9 GB  usb`, for confirmations and lists."""
        parts = [self.path, self.model or "(no model)", human_size(self.size),
                 self.transport or self.kind]
        return "  ".join(parts)


def human_size(size: int) -> str:
    """Decimal units, as card makers print them."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{size} B"
        value /= 1000
    return f"{size} B"


def _flag(value: object) -> bool:
    return value in (True, 1, "1", "true")


def _mounts(node: dict[str, object]) -> list[str]:
    found = [m for m in (node.get("mountpoints") or []) if m]  # type: ignore[attr-defined]
    for child in node.get("children") or []:  # type: ignore[attr-defined]
        found += _mounts(child)
    return found


def parse_lsblk(text: str, system_disks: set[str] | None = None) -> list[Disk]:
    """Whole disks from `lsblk --json --bytes --paths -o ...`.

    Removable when `rm` or `hotplug` is set, or the subsystems include usb or mmc: internal SD
    readers report rm=0 (facts.md section 6).
    """
    system_disks = system_disks or set()
    disks = []
    for node in json.loads(text).get("blockdevices", []):
        if node.get("type") not in ("disk", "loop"):
            continue
        subsystems = str(node.get("subsystems") or "").split(":")
        transport = str(node.get("tran") or "")
        removable = (_flag(node.get("rm")) or _flag(node.get("hotplug"))
                     or "usb" in subsystems or "mmc" in subsystems
                     or transport in ("usb", "mmc"))
        if not transport and "mmc" in subsystems:
            transport = "mmc"
        disks.append(Disk(
            path=str(node["name"]),
            size=int(node.get("size") or 0),
            model=str(node.get("model") or "").strip(),
            transport=transport,
            removable=removable,
            read_only=_flag(node.get("ro")),
            kind=str(node.get("type")),
            mountpoints=_mounts(node),
            system=str(node["name"]) in system_disks,
        ))
    return disks


def parse_diskutil(list_plist: bytes, infos: dict[str, bytes]) -> list[Disk]:
    """Whole physical disks from `diskutil list -plist` and `diskutil info -plist DISK`.

    Built-in SD readers show as internal but removable media (facts.md section 6).
    """
    import plistlib  # macOS only: Linux never pays for it

    listing = plistlib.loads(list_plist)
    disks = []
    for entry in listing.get("AllDisksAndPartitions", []):
        ident = entry.get("DeviceIdentifier", "")
        info = plistlib.loads(infos[ident]) if ident in infos else {}
        if info.get("VirtualOrPhysical", "Physical") == "Virtual":
            continue
        mounts = [p.get("MountPoint") for p in entry.get("Partitions", []) if p.get("MountPoint")]
        if entry.get("MountPoint"):
            mounts.append(entry["MountPoint"])
        removable = bool(info.get("RemovableMedia") or info.get("Removable")
                         or info.get("Ejectable") or not info.get("Internal", True)
                         or info.get("BusProtocol") in ("USB", "Secure Digital"))
        disks.append(Disk(
            # facts.md section 6: the raw node writes far faster than /dev/diskN.
            path=f"/dev/r{ident}",
            size=int(info.get("TotalSize") or info.get("Size") or entry.get("Size") or 0),
            model=str(info.get("MediaName") or "").strip(),
            transport=str(info.get("BusProtocol") or ""),
            removable=removable,
            read_only=not info.get("WritableMedia", True),
            mountpoints=mounts,
            system=bool(info.get("SystemImage")) or "/" in mounts,
        ))
    return disks


def _run(args: list[str]) -> bytes:
    return subprocess.run(args, capture_output=True, check=True).stdout


SYSTEM_MOUNTS = ("/", "/boot", "/boot/firmware", "/boot/efi")


def parse_ancestors(text: str) -> set[str]:
    """Every device a filesystem rests on, from `lsblk --list --inverse ... -o NAME DEV`.

    The inverse listing walks from the device down through LVM, device-mapper and md RAID to
    the partitions and whole disks beneath; `--list` keeps the tree drawing (`└─`) out of the
    names, which a tree listing would glue to every line but the first.
    """
    return {line.strip() for line in text.splitlines() if line.strip().startswith("/")}


def disks_under(mount: str) -> set[str]:
    """The devices (partitions, dm/md layers and whole disks) holding the filesystem at `mount`.

    Empty when nothing is mounted there or the source is not a block device (tmpfs, overlay).
    """
    try:
        found = _run(["findmnt", "-no", "SOURCE,MAJ:MIN", mount]).decode().split()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return set()
    if len(found) < 2:
        return set()
    source, number = found[0].split("[")[0], found[-1]
    candidates = [source] if source.startswith("/dev/") else []
    # `/dev/root` and similar aliases may not exist as nodes: the device number names it.
    by_number = _device_for_number(number)
    if by_number and by_number not in candidates:
        candidates.append(by_number)
    for device in candidates:
        try:
            return parse_ancestors(_run(["lsblk", "--list", "--inverse", "--noheadings",
                                         "--paths", "-o", "NAME", device]).decode())
        except (subprocess.CalledProcessError, FileNotFoundError):
            continue
    return set()


def _device_for_number(number: str) -> str | None:
    try:
        name = Path(os.path.realpath(f"/sys/dev/block/{number}")).name
    except OSError:
        return None
    return f"/dev/{name}" if name and Path(f"/dev/{name}").exists() else None


def system_disks_linux(mounts: tuple[str, ...] = SYSTEM_MOUNTS) -> set[str]:
    """The disks (and layers above them) holding `/` and `/boot` (facts.md section 6)."""
    disks: set[str] = set()
    for mount in mounts:
        disks |= disks_under(mount)
    return disks


def lsblk_json(device: str | None = None) -> str:
    """Raw lsblk JSON for one device or all."""
    args = ["lsblk", "--json", "--bytes", "--paths", "-o", LSBLK_COLUMNS]
    return _run([*args, device] if device else args).decode()


def list_disks() -> list[Disk]:
    """Every whole disk on this machine, with the facts that decide its safety."""
    if sys.platform == "darwin":
        import plistlib

        listing = _run(["diskutil", "list", "-plist", "physical"])
        idents = [e.get("DeviceIdentifier") for e in
                  plistlib.loads(listing).get("AllDisksAndPartitions", [])]
        infos = {i: _run(["diskutil", "info", "-plist", i]) for i in idents if i}
        return parse_diskutil(listing, infos)
    return parse_lsblk(lsblk_json(), system_disks_linux())
