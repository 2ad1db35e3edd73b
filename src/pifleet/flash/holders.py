"""What a file rests on, and what writing a target changes: so no target destroys the source.

A target holds the image when writing the target would change the image's bytes: the target
is a loop device whose backing file is the image; the image lives on a filesystem of the
target, of one of its partitions, or of a layer above it (device-mapper, md, a loop device over
it); or a regular-file target backs the loop device that the image's filesystem is mounted
from. The same goes for the bmap and the download cache.

Two sets meet: the *footprint* of a source (everything whose writing would change it, walked
upwards from the file: its filesystem's device, that device's whole disk, the devices beneath
a layer, a loop device's backing file and the devices under that) and the *reach* of a target
(the target itself and, for a loop device, its backing file or device, walked downwards).
Keys: ("dev", "MAJ:MIN") and ("file", st_dev, st_ino) on Linux, ("disk", "diskN") on macOS.
On Linux the walk reads sysfs and /proc/self/mountinfo; on macOS `diskutil info -plist` of the
disk holding the file's mount and `hdiutil info -plist` for attached disk images (run through
a replaceable command runner, so both are tested on recorded outputs).
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pifleet.flash.targets import unescape

Key = tuple[str | int, ...]
Runner = Callable[[list[str]], bytes]

LOOP_GET_STATUS64 = 0x4C05
_LOOP_INFO64 = struct.Struct("=QQQQQIIII64s64s32sQQ")


@dataclass
class Footprint:
    """Keys a source rests on, each with the words that say how (for the error message)."""

    label: str  # "the image", "the bmap", "the download cache"
    path: Path
    keys: dict[Key, str] = field(default_factory=dict)

    def add(self, key: Key, how: str) -> bool:
        """Record `key`; False if it was already there (the walk stops there)."""
        if key in self.keys:
            return False
        self.keys[key] = how
        return True


@dataclass
class System:
    """Where the Linux walk reads from: replaced by a fake tree in tests."""

    sysfs: Path = Path("/sys")
    mountinfo: Path = Path("/proc/self/mountinfo")
    dev: Path = Path("/dev")


def _devnum(number: int) -> str:
    return f"{os.major(number)}:{os.minor(number)}"


# --- Linux ------------------------------------------------------------------------------

def _mounts(system: System) -> list[tuple[str, str, str, str, str]]:
    """(MAJ:MIN, mount point, fstype, source, super options) from mountinfo."""
    try:
        lines = system.mountinfo.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        head, _, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if len(fields) >= 5 and len(rest) >= 2:
            found.append((fields[2], unescape(fields[4]), rest[0], unescape(rest[1]),
                          rest[2] if len(rest) > 2 else ""))
    return found


def _block_dir(system: System, number: str) -> Path | None:
    link = system.sysfs / "dev" / "block" / number
    return link.resolve() if link.exists() else None


def _dev_name(directory: Path) -> str:
    try:
        for line in (directory / "uevent").read_text().splitlines():
            if line.startswith("DEVNAME="):
                return "/dev/" + line.split("=", 1)[1]
    except OSError:
        pass
    return "/dev/" + directory.name


def _loop_backing(system: System, directory: Path) -> tuple[int, int, int, str] | None:
    """(st_dev, st_ino, st_rdev, path) of a loop device's backing file, None when detached.

    The kernel's own record (LOOP_GET_STATUS64) comes first: it names the backing inode even
    when the file was renamed or reached through a symlink; sysfs's path is the fallback.
    """
    loop_dir = directory / "loop"
    if not loop_dir.is_dir():
        return None
    try:
        shown = (loop_dir / "backing_file").read_text().strip()
    except OSError:
        shown = ""
    try:
        fd = os.open(system.dev / Path(_dev_name(directory)).name, os.O_RDONLY | os.O_CLOEXEC)
        try:
            raw = fcntl.ioctl(fd, LOOP_GET_STATUS64, bytes(_LOOP_INFO64.size))
        finally:
            os.close(fd)
        device, inode, rdevice = _LOOP_INFO64.unpack(raw)[:3]
        return device, inode, rdevice, shown
    except OSError:
        pass
    if not shown:
        return None
    try:
        info = os.stat(shown)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_rdev if stat.S_ISBLK(info.st_mode) else 0, shown


def walk_device(print_: Footprint, number: str, how: str, system: System) -> None:
    """Add everything whose writing changes block device `number` (MAJ:MIN): itself, its
    whole disk, the devices beneath a layer, a loop device's backing file or device."""
    directory = _block_dir(system, number)
    if directory is None:
        _walk_anonymous(print_, number, how, system)
        return
    name = _dev_name(directory)
    if not print_.add(("dev", number), how):
        return
    if (directory / "partition").exists():
        parent = directory.parent
        walk_device(print_, (parent / "dev").read_text().strip(),
                     f"{how}, on partition {name} of {_dev_name(parent)}", system)
    slaves = directory / "slaves"
    for slave in sorted(slaves.iterdir()) if slaves.is_dir() else []:
        try:
            below = (slave / "dev").read_text().strip()
        except OSError:
            continue
        walk_device(print_, below, f"{how}, on {name}, which rests on {_dev_name(slave)}",
                     system)
    backing = _loop_backing(system, directory)
    if backing is not None:
        st_dev, st_ino, st_rdev, shown = backing
        if st_rdev:
            walk_device(print_, _devnum(st_rdev),
                         f"{how}, on loop device {name} over {shown or _devnum(st_rdev)}",
                         system)
        else:
            file_how = f"{how}, on loop device {name}, whose backing file is {shown}"
            if print_.add(("file", st_dev, st_ino), file_how):
                walk_device(print_, _devnum(st_dev), f"{file_how} (on its filesystem)",
                             system)


def _walk_anonymous(print_: Footprint, number: str, how: str, system: System) -> None:
    """A filesystem without a block device number of its own (btrfs subvolumes, overlayfs):
    its source device or layers, from mountinfo."""
    for devnum, _mount, fstype, source, options in _mounts(system):
        if devnum != number:
            continue
        if source.startswith("/dev/"):
            try:
                info = os.stat(source)
            except OSError:
                continue
            if stat.S_ISBLK(info.st_mode) and _devnum(info.st_rdev) != number:
                walk_device(print_, _devnum(info.st_rdev), f"{how} (from {source})", system)
        if fstype == "overlay":
            for option in options.split(","):
                key, _, value = option.partition("=")
                if key in ("lowerdir", "upperdir"):
                    for layer in value.split(":"):
                        if layer:
                            _walk_path(print_, Path(layer), f"{how}, a layer of which is "
                                       f"{layer}", system)


def _mount_point(number: str, system: System) -> str:
    for devnum, mount, *_ in _mounts(system):
        if devnum == number:
            return mount
    return "?"


def _walk_path(print_: Footprint, path: Path, how: str, system: System) -> None:
    try:
        info = os.stat(path)
    except OSError:
        return
    if stat.S_ISBLK(info.st_mode):
        walk_device(print_, _devnum(info.st_rdev), how, system)
        return
    if print_.add(("file", info.st_dev, info.st_ino), how):
        number = _devnum(info.st_dev)
        walk_device(print_, number, f"{how}, on the filesystem mounted at "
                     f"{_mount_point(number, system)}", system)


def footprint_linux(label: str, path: Path, system: System | None = None) -> Footprint:
    """What `path` rests on, walked upwards (Linux)."""
    print_ = Footprint(label, path)
    _walk_path(print_, _existing(path), f"{label} {path}", system or System())
    return print_


def reach_linux(target: Path, system: System | None = None) -> dict[Key, str]:
    """What writing `target` changes, walked downwards: the file or device itself and, for a
    loop device, its backing file or device (Linux)."""
    system = system or System()
    found: dict[Key, str] = {}
    try:
        info = os.stat(target)
    except OSError:
        return found
    if stat.S_ISREG(info.st_mode):
        found[("file", info.st_dev, info.st_ino)] = "it"
        return found
    if not stat.S_ISBLK(info.st_mode):
        return found
    number, role = _devnum(info.st_rdev), "it"
    while number not in {k[1] for k in found if k[0] == "dev"}:
        found[("dev", number)] = role
        directory = _block_dir(system, number)
        backing = _loop_backing(system, directory) if directory else None
        if backing is None:
            break
        st_dev, st_ino, st_rdev, shown = backing
        if not st_rdev:
            found[("file", st_dev, st_ino)] = f"its backing file {shown}"
            break
        number, role = _devnum(st_rdev), f"its backing device {shown}"
    return found


def _existing(path: Path) -> Path:
    """`path`, or its nearest existing parent (a cache folder not made yet)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# --- macOS ------------------------------------------------------------------------------

def _run(args: list[str]) -> bytes:
    return subprocess.run(args, capture_output=True, check=True).stdout


def _disk_images(run: Runner) -> dict[str, str]:
    """Attached disk images: whole disk (diskN) -> image file, from `hdiutil info -plist`."""
    import plistlib  # macOS only: Linux never pays for it

    try:
        info = plistlib.loads(run(["hdiutil", "info", "-plist"]))
    except (OSError, subprocess.CalledProcessError, plistlib.InvalidFileException):
        return {}
    found = {}
    for image in info.get("images", []):
        for entity in image.get("system-entities", []):
            ident = str(entity.get("dev-entry", "")).removeprefix("/dev/")
            if ident and "s" not in ident.removeprefix("disk"):
                found[ident] = str(image.get("image-path", ""))
    return found


def _mount_of(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _walk_disk_darwin(print_: Footprint, ident: str, how: str, run: Runner,
                      images: dict[str, str]) -> None:
    import plistlib

    if not print_.add(("disk", ident), how):
        return
    try:
        info = plistlib.loads(run(["diskutil", "info", "-plist", ident]))
    except (OSError, subprocess.CalledProcessError, plistlib.InvalidFileException):
        return
    whole = str(info.get("ParentWholeDisk") or "")
    if whole and whole != ident:
        _walk_disk_darwin(print_, whole, f"{how}, on {ident} of {whole}", run, images)
    for store in info.get("APFSPhysicalStores") or []:
        below = str(store.get("APFSPhysicalStore") or store.get("DeviceIdentifier") or "")
        if below:
            _walk_disk_darwin(print_, below, f"{how}, in the APFS container on {below}", run,
                              images)
    image = images.get(ident)
    if image:
        _walk_path_darwin(print_, Path(image), f"{how}, on disk image {image}", run, images)


def _walk_path_darwin(print_: Footprint, path: Path, how: str, run: Runner,
                      images: dict[str, str]) -> None:
    try:
        info = os.stat(path)
    except OSError:
        return
    if not print_.add(("file", info.st_dev, info.st_ino), how):
        return
    import plistlib

    mount = _mount_of(path)
    try:
        volume = plistlib.loads(run(["diskutil", "info", "-plist", str(mount)]))
    except (OSError, subprocess.CalledProcessError, plistlib.InvalidFileException):
        return
    ident = str(volume.get("DeviceIdentifier") or "")
    if ident:
        _walk_disk_darwin(print_, ident, f"{how}, on the volume mounted at {mount}", run,
                          images)


def footprint_darwin(label: str, path: Path, run: Runner = _run) -> Footprint:
    """What `path` rests on (macOS): the disk of its mount, the APFS physical stores under
    that, and the file of a disk image it is attached from."""
    print_ = Footprint(label, path)
    _walk_path_darwin(print_, _existing(path), f"{label} {path}", run, _disk_images(run))
    return print_


def reach_darwin(target: Path, run: Runner = _run) -> dict[Key, str]:
    """What writing `target` changes (macOS): the disk, and the file of a disk image."""
    if not str(target).startswith("/dev/"):
        try:
            info = os.stat(target)
        except OSError:
            return {}
        return {("file", info.st_dev, info.st_ino): "it"} if stat.S_ISREG(info.st_mode) else {}
    ident = target.name.removeprefix("r")
    found: dict[Key, str] = {("disk", ident): "it"}
    image = _disk_images(run).get(ident)
    if image:
        try:
            backing = os.stat(image)
            found[("file", backing.st_dev, backing.st_ino)] = f"its disk image {image}"
        except OSError:
            pass
    return found


# --- the check ----------------------------------------------------------------------------

def footprint(label: str, path: Path) -> Footprint:
    """What `path` rests on, on this system."""
    if sys.platform == "darwin":
        return footprint_darwin(label, path)
    return footprint_linux(label, path)


def reach(target: Path) -> dict[Key, str]:
    """What writing `target` changes, on this system."""
    if sys.platform == "darwin":
        return reach_darwin(target)
    return reach_linux(target)


def conflict(target: Path, reached: dict[Key, str], prints: list[Footprint]) -> str | None:
    """Why writing `target` would change a source (BadInput's words), or None."""
    for print_ in prints:
        first = next(iter(print_.keys), None)
        for key, role in reached.items():
            how = print_.keys.get(key)
            if how is None:
                continue
            if key == first:
                what = f"is {how}" if role == "it" else f"{role} is {how}"
            else:
                what = f"{role} holds {how}"
            return (f"{target}: {what}; writing it would destroy {print_.label}, so nothing "
                    f"was written")
    return None
