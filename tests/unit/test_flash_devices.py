"""Disk listings parsed from recorded lsblk and diskutil outputs."""

from __future__ import annotations

import plistlib

from pifleet.flash.devices import parse_diskutil, parse_lsblk

# Recorded shape of `lsblk --json --bytes --paths -o NAME,TYPE,RM,HOTPLUG,TRAN,SUBSYSTEMS,RO,
# SIZE,MODEL,MOUNTPOINTS,PKNAME` on a laptop with a USB reader, a built-in SD slot and NVMe.
LSBLK = """{
 "blockdevices": [
  {"name":"/dev/sda", "type":"disk", "rm":true, "hotplug":true, "tran":"usb",
   "subsystems":"block:scsi:usb:pci", "ro":false, "size":31914983424,
   "model":"SD/MMC/MS PRO   ", "mountpoints":[null], "pkname":null,
   "children": [
    {"name":"/dev/sda1", "type":"part", "rm":true, "hotplug":true, "tran":null,
     "subsystems":"block:scsi:usb:pci", "ro":false, "size":536870912, "model":null,
     "mountpoints":["/media/me/bootfs"], "pkname":"/dev/sda"}
   ]},
  {"name":"/dev/mmcblk0", "type":"disk", "rm":false, "hotplug":false, "tran":null,
   "subsystems":"block:mmc:mmc_host:pci", "ro":false, "size":15931539456, "model":null,
   "mountpoints":[null], "pkname":null},
  {"name":"/dev/sdb", "type":"disk", "rm":true, "hotplug":true, "tran":"usb",
   "subsystems":"block:scsi:usb:pci", "ro":true, "size":7948206080, "model":"Locked",
   "mountpoints":[null], "pkname":null},
  {"name":"/dev/nvme0n1", "type":"disk", "rm":false, "hotplug":false, "tran":"nvme",
   "subsystems":"block:nvme:pci", "ro":false, "size":512110190592,
   "model":"Samsung SSD 980", "mountpoints":[null], "pkname":null,
   "children": [
    {"name":"/dev/nvme0n1p2", "type":"part", "rm":false, "hotplug":false, "tran":"nvme",
     "subsystems":"block:nvme:pci", "ro":false, "size":511000000000, "model":null,
     "mountpoints":["/"], "pkname":"/dev/nvme0n1"}
   ]},
  {"name":"/dev/sr0", "type":"rom", "rm":true, "hotplug":true, "tran":"sata",
   "subsystems":"block:scsi:pci", "ro":false, "size":1073741312, "model":"DVD",
   "mountpoints":[null], "pkname":null}
 ]
}"""


def test_lsblk_removable_rules() -> None:
    disks = {d.path: d for d in parse_lsblk(LSBLK, {"/dev/nvme0n1"})}
    assert set(disks) == {"/dev/sda", "/dev/mmcblk0", "/dev/sdb", "/dev/nvme0n1"}
    usb = disks["/dev/sda"]
    assert usb.removable and usb.safe and usb.transport == "usb"
    assert usb.model == "SD/MMC/MS PRO"
    assert usb.mountpoints == ["/media/me/bootfs"]
    # facts.md section 6: the internal SD slot says rm=0; the mmc subsystem makes it removable.
    slot = disks["/dev/mmcblk0"]
    assert slot.removable and slot.safe and slot.transport == "mmc"
    assert not disks["/dev/sdb"].safe  # read-only
    system = disks["/dev/nvme0n1"]
    assert system.system and not system.removable and not system.safe
    assert "31.9 GB" in usb.describe()


def _plist(data: dict[str, object]) -> bytes:
    return plistlib.dumps(data)


# Recorded shape of `diskutil list -plist physical` and `diskutil info -plist diskN` on a Mac
# with a built-in SD reader (internal, removable media) and the internal SSD.
LIST = _plist({"AllDisksAndPartitions": [
    {"DeviceIdentifier": "disk0", "Size": 500277790720, "Content": "GUID_partition_scheme",
     "Partitions": [{"DeviceIdentifier": "disk0s1", "MountPoint": "/System/Volumes/xarts"}]},
    {"DeviceIdentifier": "disk4", "Size": 31914983424, "Content": "FDisk_partition_scheme",
     "Partitions": [{"DeviceIdentifier": "disk4s1", "MountPoint": "/Volumes/bootfs"}]},
]})
INFOS = {
    "disk0": _plist({"DeviceIdentifier": "disk0", "Internal": True, "RemovableMedia": False,
                     "Ejectable": False, "BusProtocol": "Apple Fabric", "TotalSize": 500277790720,
                     "MediaName": "APPLE SSD AP0512Q", "WritableMedia": True,
                     "VirtualOrPhysical": "Physical"}),
    "disk4": _plist({"DeviceIdentifier": "disk4", "Internal": True, "RemovableMedia": True,
                     "Ejectable": True, "BusProtocol": "Secure Digital",
                     "TotalSize": 31914983424, "MediaName": "SD Card Reader",
                     "WritableMedia": True, "VirtualOrPhysical": "Physical"}),
}


def test_diskutil_internal_sd_reader_is_removable_and_uses_raw_node() -> None:
    disks = {d.path: d for d in parse_diskutil(LIST, INFOS)}
    card = disks["/dev/rdisk4"]
    assert card.removable and card.safe
    assert card.mountpoints == ["/Volumes/bootfs"]
    assert card.transport == "Secure Digital"
    assert not disks["/dev/rdisk0"].removable
