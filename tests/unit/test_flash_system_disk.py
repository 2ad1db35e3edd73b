"""The disk holding `/` is found below partitions, LVM, dm and md (recorded lsblk outputs)."""

from __future__ import annotations

import pytest

from pifleet.flash import devices

# Recorded `findmnt -no SOURCE,MAJ:MIN /` and `lsblk --list --inverse --noheadings --paths
# -o NAME SOURCE` on machines with / on a partition, on LVM over a partition, on md RAID1, on
# a dm-crypt volume inside LVM, and on a whole (virtual) disk.
CASES = {
    "partition": ("/dev/sda2  8:2\n", "/dev/sda2\n/dev/sda\n", {"/dev/sda"}),
    "lvm": ("/dev/mapper/vg0-root 254:1\n",
            "/dev/mapper/vg0-root\n/dev/nvme0n1p3\n/dev/nvme0n1\n", {"/dev/nvme0n1"}),
    "md-raid1": ("/dev/md0 9:0\n", "/dev/md0\n/dev/sda1\n/dev/sda\n/dev/sdb1\n/dev/sdb\n",
                 {"/dev/sda", "/dev/sdb"}),
    "crypt-on-lvm": ("/dev/mapper/root_crypt 254:2\n",
                     "/dev/mapper/root_crypt\n/dev/mapper/vg-root\n/dev/sda3\n/dev/sda\n",
                     {"/dev/sda"}),
    "btrfs-subvolume": ("/dev/sda2[/@] 0:34\n", "/dev/sda2\n/dev/sda\n", {"/dev/sda"}),
    "whole-disk": ("/dev/vda 254:0\n", "/dev/vda\n", {"/dev/vda"}),
}


def _as_lsblk_prints(listing: str, args: list[str]) -> str:
    """The recorded list, or the tree lsblk draws when neither `--list` nor `-l` is given."""
    if "--list" in args or any(a.startswith("-") and not a.startswith("--") and "l" in a
                               for a in args):
        return listing
    lines = listing.splitlines()
    return "\n".join([lines[0]] + ["  " * i + "└─" + line
                                    for i, line in enumerate(lines[1:])]) + "\n"


@pytest.mark.parametrize("case", sorted(CASES))
def test_system_disk_found_below_every_layer(case: str, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    findmnt, lsblk, disks = CASES[case]
    asked: list[list[str]] = []

    def fake_run(args: list[str]) -> bytes:
        asked.append(args)
        if args[0] == "findmnt":
            return findmnt.encode() if args[-1] == "/" else b""
        assert args[0] == "lsblk"
        return _as_lsblk_prints(lsblk, args).encode()

    monkeypatch.setattr(devices, "_run", fake_run)
    found = devices.system_disks_linux()
    assert disks <= found
    assert not any("─" in name for name in found)
    # The source without the btrfs subvolume suffix is what lsblk is asked about.
    assert asked[1][-1] == findmnt.split()[0].split("[")[0]


def test_tree_drawing_is_never_taken_for_a_name() -> None:
    # What `lsblk -nspo NAME /dev/sda2` prints without --list: the parser must not need it,
    # and must not turn its drawing into device names.
    assert devices.parse_ancestors("/dev/sda2\n└─/dev/sda\n") == {"/dev/sda2"}
    assert devices.parse_ancestors("/dev/sda2\n/dev/sda\n") == {"/dev/sda2", "/dev/sda"}


def test_parse_lsblk_marks_the_disk_under_a_partition_root(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    findmnt, lsblk, _ = CASES["partition"]
    monkeypatch.setattr(devices, "_run", lambda args: (
        (findmnt if args[-1] == "/" else "") if args[0] == "findmnt"
        else _as_lsblk_prints(lsblk, args)).encode())
    listing = ('{"blockdevices": [{"name": "/dev/sda", "type": "disk", "rm": false, '
               '"hotplug": false, "tran": "sata", "ro": false, "size": 500107862016, '
               '"children": [{"name": "/dev/sda2", "type": "part", "mountpoints": ["/"]}]}]}')
    (disk,) = devices.parse_lsblk(listing, devices.system_disks_linux())
    assert disk.system and not disk.safe


def test_nothing_mounted_or_not_a_block_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "_run", lambda args: b"overlay 0:45\n"
                        if args[0] == "findmnt" else b"")
    assert devices.system_disks_linux() == set()
