"""What a source rests on: the Linux walk on a fake sysfs (partitions, layers, loop devices),
the macOS walk on recorded `diskutil info -plist` and `hdiutil info -plist` outputs."""

from __future__ import annotations

import os
import plistlib
from pathlib import Path

from pifleet.flash import holders
from pifleet.flash.holders import Footprint, System


def _block(sysfs: Path, rel: str, number: str, *, partition: bool = False) -> Path:
    """A device folder under devices/ and its /sys/dev/block link."""
    directory = sysfs / "devices" / rel
    directory.mkdir(parents=True)
    (directory / "dev").write_text(number + "\n")
    (directory / "uevent").write_text(f"MAJOR={number.split(':')[0]}\nDEVNAME={directory.name}\n")
    if partition:
        (directory / "partition").write_text("1\n")
    links = sysfs / "dev" / "block"
    links.mkdir(parents=True, exist_ok=True)
    (links / number).symlink_to(os.path.relpath(directory, links))
    return directory


def _fake_linux(tmp_path: Path, backing: Path) -> System:
    """sda with partition sda1; dm-0 over sda1; loop7 backed by a file; mountinfo."""
    sysfs = tmp_path / "sys"
    _block(sysfs, "pci0/block/sda", "8:0")
    sda1 = _block(sysfs, "pci0/block/sda/sda1", "8:1", partition=True)
    dm = _block(sysfs, "virtual/block/dm-0", "254:0")
    (dm / "slaves").mkdir()
    (dm / "slaves" / "sda1").symlink_to(sda1)
    loop = _block(sysfs, "virtual/block/loop7", "7:7")
    (loop / "loop").mkdir()
    (loop / "loop" / "backing_file").write_text(f"{backing}\n")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("30 1 254:0 / /srv/images rw,relatime - ext4 /dev/mapper/data rw\n"
                         "31 1 7:7 / /mnt/card\\040copy rw - ext4 /dev/loop7 rw\n")
    return System(sysfs=sysfs, mountinfo=mountinfo, dev=tmp_path / "no-dev")


def test_a_filesystem_on_a_layer_over_a_partition_rests_on_the_whole_disk(tmp_path: Path
                                                                         ) -> None:
    system = _fake_linux(tmp_path, tmp_path / "absent")
    found = Footprint("the image", Path("/srv/images/a.img"))
    holders.walk_device(found, "254:0", "the image /srv/images/a.img", system)
    assert set(found.keys) == {("dev", "254:0"), ("dev", "8:1"), ("dev", "8:0")}
    how = found.keys[("dev", "8:0")]
    assert "/dev/dm-0" in how and "partition /dev/sda1 of /dev/sda" in how
    reason = holders.conflict(Path("/dev/sda"), {("dev", "8:0"): "it"}, [found])
    assert reason is not None
    assert reason.startswith("/dev/sda: it holds the image /srv/images/a.img")
    assert "nothing was written" in reason
    # A sibling partition, or another disk, holds nothing of it.
    assert holders.conflict(Path("/dev/sda2"), {("dev", "8:2"): "it"}, [found]) is None


def test_a_loop_device_rests_on_its_backing_file(tmp_path: Path) -> None:
    backing = tmp_path / "card.img"
    backing.write_bytes(b"x")
    system = _fake_linux(tmp_path, backing)
    found = Footprint("the image", Path("/mnt/card copy/a.img"))
    holders.walk_device(found, "7:7", "the image /mnt/card copy/a.img", system)
    info = backing.stat()
    assert ("file", info.st_dev, info.st_ino) in found.keys
    # The card image file as a target: writing it would destroy the image inside it.
    reached = {("file", info.st_dev, info.st_ino): "it"}
    reason = holders.conflict(backing, reached, [found])
    assert reason is not None and "loop device /dev/loop7" in reason and str(backing) in reason


def test_the_loop_backing_file_found_by_sysfs_when_the_kernel_cannot_be_asked(
        tmp_path: Path) -> None:
    backing = tmp_path / "a.img"
    backing.write_bytes(b"x")
    system = _fake_linux(tmp_path, backing)
    reached = holders.reach_linux(tmp_path / "absent-device", system)
    assert reached == {}
    found = holders.footprint_linux("the image", backing, system)
    info = backing.stat()
    assert next(iter(found.keys)) == ("file", info.st_dev, info.st_ino)
    reason = holders.conflict(Path("/dev/loop7"),
                              {("dev", "7:7"): "it",
                               ("file", info.st_dev, info.st_ino): f"its backing file {backing}"},
                              [found])
    assert reason == (f"/dev/loop7: its backing file {backing} is the image {backing}; writing "
                      f"it would destroy the image, so nothing was written")


def _plist(data: dict[str, object]) -> bytes:
    return plistlib.dumps(data)


def _runner(answers: dict[str, bytes], images: bytes = b"") -> holders.Runner:
    """`diskutil info -plist X` answered by X (a mount point answers as "mount")."""
    def run(args: list[str]) -> bytes:
        if args[0] == "hdiutil":
            return images or _plist({"images": []})
        ident = args[-1]
        return answers[ident if ident in answers else "mount"]

    return run


# Recorded shapes of `diskutil info -plist`: an SD card's FAT volume, and an APFS volume whose
# container (a synthesized disk) lives on the internal SSD's second partition.
SD_VOLUME = _plist({"DeviceIdentifier": "disk4s1", "ParentWholeDisk": "disk4",
                    "MountPoint": "/Volumes/bootfs", "FilesystemType": "msdos",
                    "BusProtocol": "Secure Digital", "Internal": True})
SD_DISK = _plist({"DeviceIdentifier": "disk4", "ParentWholeDisk": "disk4", "WholeDisk": True,
                  "BusProtocol": "Secure Digital"})
APFS_VOLUME = _plist({"DeviceIdentifier": "disk3s5", "ParentWholeDisk": "disk3",
                      "MountPoint": "/System/Volumes/Data", "FilesystemType": "apfs",
                      "APFSContainerReference": "disk3",
                      "APFSPhysicalStores": [{"APFSPhysicalStore": "disk0s2"}]})
APFS_CONTAINER = _plist({"DeviceIdentifier": "disk3", "ParentWholeDisk": "disk3",
                         "VirtualOrPhysical": "Virtual",
                         "APFSPhysicalStores": [{"APFSPhysicalStore": "disk0s2"}]})
SSD_PARTITION = _plist({"DeviceIdentifier": "disk0s2", "ParentWholeDisk": "disk0"})
SSD = _plist({"DeviceIdentifier": "disk0", "ParentWholeDisk": "disk0", "Internal": True})


def test_macos_image_on_the_cards_own_volume(tmp_path: Path) -> None:
    image = tmp_path / "raspios.img"
    image.write_bytes(b"x")
    run = _runner({"mount": SD_VOLUME, "disk4s1": SD_VOLUME, "disk4": SD_DISK})
    found = holders.footprint_darwin("the image", image, run)
    assert ("disk", "disk4") in found.keys
    reason = holders.conflict(Path("/dev/rdisk4"), holders.reach_darwin(Path("/dev/rdisk4"),
                                                                        run), [found])
    assert reason is not None and reason.startswith(f"/dev/rdisk4: it holds the image {image}")
    assert holders.conflict(Path("/dev/rdisk5"), holders.reach_darwin(Path("/dev/rdisk5"), run),
                            [found]) is None


def test_macos_apfs_volume_rests_on_its_physical_store(tmp_path: Path) -> None:
    image = tmp_path / "raspios.img"
    image.write_bytes(b"x")
    run = _runner({"mount": APFS_VOLUME, "disk3s5": APFS_VOLUME, "disk3": APFS_CONTAINER,
                   "disk0s2": SSD_PARTITION, "disk0": SSD})
    found = holders.footprint_darwin("the image", image, run)
    assert {("disk", d) for d in ("disk3s5", "disk3", "disk0s2", "disk0")} <= set(found.keys)
    assert "APFS container on disk0s2" in found.keys[("disk", "disk0")]


def test_macos_image_inside_an_attached_disk_image(tmp_path: Path) -> None:
    """The image sits on a mounted .dmg (disk6); the .dmg file itself is a target."""
    image = tmp_path / "raspios.img"
    image.write_bytes(b"x")
    dmg = tmp_path / "cards.dmg"
    dmg.write_bytes(b"x")
    attached = _plist({"images": [{"image-path": str(dmg), "system-entities": [
        {"dev-entry": "/dev/disk6", "content-hint": "FDisk_partition_scheme"},
        {"dev-entry": "/dev/disk6s1", "mount-point": "/Volumes/cards"}]}]})
    volume = _plist({"DeviceIdentifier": "disk6s1", "ParentWholeDisk": "disk6"})
    whole = _plist({"DeviceIdentifier": "disk6", "ParentWholeDisk": "disk6"})
    run = _runner({"mount": volume, "disk6s1": volume, "disk6": whole}, attached)
    found = holders.footprint_darwin("the image", image, run)
    reason = holders.conflict(dmg, holders.reach_darwin(dmg, run), [found])
    assert reason is not None and f"on disk image {dmg}" in reason
    # And the attached disk's raw node reaches the .dmg too.
    assert ("file", dmg.stat().st_dev, dmg.stat().st_ino) in holders.reach_darwin(
        Path("/dev/rdisk6"), run)
