"""Flash targets: a whole removable disk or a regular file, checked before anything is written.

Every check runs for every target before the first byte is written anywhere, so bad input
leaves all cards untouched (exit 2).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from pifleet.errors import BadInput
from pifleet.flash import devices
from pifleet.flash.devices import Disk

BLKROGET = 0x125E
BLKGETSIZE64 = 0x80081272
BUSY_WAIT = 3.0


@dataclass
class Target:
    """A checked target. `disk` is None for a regular file.

    `unmount` lists the filesystems found mounted at check time that `--unmount` allowed to
    take off; they stay mounted until `release` runs, after the confirmation.
    """

    path: Path
    disk: Disk | None = None
    unmount: tuple[str, ...] = ()

    @property
    def is_device(self) -> bool:
        """Whether this is a block (or macOS raw character) device."""
        return self.disk is not None

    def describe(self) -> str:
        """What the confirmation shows."""
        if not self.disk:
            return f"{self.path} (image file)"
        mounted = f"  (will unmount {', '.join(self.unmount)})" if self.unmount else ""
        return self.disk.describe() + mounted


@dataclass(frozen=True)
class Policy:
    """What the user allowed."""

    allow_non_removable: bool = False
    unmount: bool = False


def check(path: Path, image_size: int | None, policy: Policy,
          guard: Callable[[Path], None] | None = None) -> Target:
    """Check one target; BadInput naming it and the reason if it must not be written.

    `guard` raises BadInput when the target holds the source (see holders.py); only the
    system disk is refused before it asks. `image_size` None skips the size check. Only
    reads: mounted filesystems that `--unmount` allows are noted on the Target and taken off
    by `release`, once the user has confirmed.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise BadInput(f"{path}: directory {path.parent} does not exist") from None
        return Target(path)
    except OSError as exc:
        raise BadInput(f"{path}: {exc.strerror}") from exc
    if stat.S_ISDIR(mode):
        raise BadInput(f"{path}: is a directory; give a whole disk or an image file name")
    if stat.S_ISREG(mode):
        if guard:
            guard(path)
        return Target(path)
    if not (stat.S_ISBLK(mode) or (sys.platform == "darwin" and stat.S_ISCHR(mode))):
        raise BadInput(f"{path}: neither a block device nor a regular file")
    disk = _describe(path)
    if disk.kind not in ("disk", "loop"):
        raise BadInput(f"{path}: is a {disk.kind}, not a whole disk; give the disk itself")
    if disk.system:
        raise BadInput(f"{path}: holds the running system (/ or /boot); refusing always")
    if guard:
        guard(path)
    if not disk.removable and not policy.allow_non_removable:
        raise BadInput(f"{path}: not a removable disk ({disk.describe()}); pass "
                       f"--allow-non-removable if you really mean it")
    if disk.read_only or _read_only(path):
        raise BadInput(f"{path}: is read-only (write-protect switch on the card or adapter?)")
    size = disk.size or _device_size(path)
    if image_size is not None and size < image_size:
        raise BadInput(f"{path}: too small: {devices.human_size(size)} for an image of "
                       f"{devices.human_size(image_size)}")
    mounts = sorted(set(disk.mountpoints) | _mounted_from(path))
    if mounts and not policy.unmount:
        raise BadInput(f"{path}: has mounted filesystems ({', '.join(mounts)}); unmount "
                       f"them or pass --unmount")
    return Target(path, disk, tuple(mounts))


def _describe(path: Path) -> Disk:
    if sys.platform == "darwin":
        name = path.name.removeprefix("r")
        found = [d for d in devices.list_disks() if d.path.endswith("/r" + name)]
        if not found:
            raise BadInput(f"{path}: not a whole disk diskutil knows")
        return found[0]
    try:
        text = devices.lsblk_json(str(path))
    except subprocess.CalledProcessError as exc:
        raise BadInput(f"{path}: lsblk cannot describe it") from exc
    import json

    nodes = json.loads(text).get("blockdevices", [])
    if nodes and nodes[0].get("type") not in ("disk", "loop"):
        return Disk(path=str(path), size=0, kind=str(nodes[0].get("type")))
    found = devices.parse_lsblk(text, devices.system_disks_linux())
    if not found:
        raise BadInput(f"{path}: lsblk does not list it")
    return found[0]


def _read_only(path: Path) -> bool:
    if sys.platform == "darwin":
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        value = fcntl.ioctl(fd, BLKROGET, struct.pack("i", 0))
        return bool(struct.unpack("i", value)[0])
    except OSError:
        return False
    finally:
        os.close(fd)


def _device_size(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def _mounted_from(path: Path) -> set[str]:
    """Mount points of the disk or its partitions, from /proc/self/mountinfo by device number."""
    if sys.platform == "darwin":
        return set()
    try:
        rdev = os.stat(path).st_rdev
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return set()
    disk = f"{os.major(rdev)}:{os.minor(rdev)}"
    holders = {disk}
    sys_dir = Path(f"/sys/dev/block/{disk}")
    for child in sys_dir.glob("*/dev") if sys_dir.exists() else []:
        holders.add(child.read_text().strip())
    found = set()
    for line in lines:
        fields = line.split()
        if len(fields) > 4 and fields[2] in holders:
            found.add(unescape(fields[4]))
    return found


def release(targets: list[Target]) -> None:
    """Unmount what `--unmount` allowed, for every target, before any of them is opened.

    Called after the confirmation: a plan that is not carried out leaves every mount in
    place. BadInput when a filesystem will not come off (nothing has been written yet).
    """
    for target in targets:
        _release(target)


def _release(target: Target) -> None:
    if not target.unmount:
        return
    # Read again: the user may have unmounted some of them while the prompt waited.
    still = sorted(set(target.unmount) & _mounted_from(target.path))
    if still or sys.platform == "darwin":
        _unmount(target.path, still or list(target.unmount))
    target.unmount = ()


def unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in a path as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _unmount(path: Path, mounts: list[str]) -> None:
    if sys.platform == "darwin":
        command = [["diskutil", "unmountDisk", str(path).replace("/dev/r", "/dev/")]]
    else:
        # Deepest first, so nested mounts come off before their parents.
        command = [["umount", m] for m in sorted(mounts, key=len, reverse=True)]
    for args in command:
        proc = subprocess.run(args, capture_output=True, check=False)
        if proc.returncode != 0:
            raise BadInput(f"{path}: could not unmount: "
                           f"{proc.stderr.decode(errors='replace').strip()}")


def open_target(target: Target) -> int:
    """Open for reading and writing; a device exclusively (O_EXCL), so no mount can race us.

    Mounts that `--unmount` allowed and `release` has not yet taken off come off first.
    """
    _release(target)
    if target.is_device:
        flags = os.O_RDWR | (os.O_EXCL if sys.platform != "darwin" else 0)
    else:
        flags = os.O_RDWR | os.O_CREAT
    deadline = time.monotonic() + (BUSY_WAIT if target.is_device else 0)
    while True:
        try:
            return os.open(target.path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            # Just after an unmount (or a udev probe) the kernel can hold the disk for a moment.
            if exc.errno == errno.EBUSY and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            _open_failed(target, exc)


def _open_failed(target: Target, exc: OSError) -> NoReturn:
    if exc.errno == errno.EBUSY:
        raise BadInput(f"{target.path}: busy (mounted or held open by another program)"
                       ) from exc
    raise BadInput(f"{target.path}: cannot open: {exc.strerror}") from exc
