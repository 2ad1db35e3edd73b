"""The seed pifleet writes, read by real cloud-init (Debian's 22.4) in a chroot of a Debian root.

The chroot stands for the card's root filesystem at first boot: cloud-init's four stages run on
the NoCloud seed copied off the written card, then the tests look at what a user would: the
account's groups, its key, its password, sudo, the hostname, and what the image's own user-data
asked for (HypriotOS 1.7 ships one).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import flashimages as images
import pytest
from flashhelp import boot_volume, run
from testroot import Chroot

Packed = Callable[[str, str], Path]

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0123456789abcdef0123456789abcdef01234567 me@lab"
# Debian's cloud.cfg gives its default user these groups; Raspberry Pi OS's adds gpio, i2c,
# spi, video and more. A `groups:` on pifleet's user would replace them all.
DEBIAN_GROUPS = {"adm", "audio", "cdrom", "dialout", "dip", "floppy", "netdev", "plugdev",
                 "sudo", "video"}
STAGES = ("cloud-init init --local; cloud-init init; cloud-init modules --mode config; "
          "cloud-init modules --mode final")

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare")


def _first_boot(card: Path, tmp_path: Path) -> Chroot:
    """Copy the card's seed into a fresh chroot and run every cloud-init stage on it."""
    root = Chroot(tmp_path / "root")
    volume = boot_volume(card)
    for name in ("user-data", "meta-data", "network-config"):
        if volume.exists(name):
            root.put(f"/var/lib/cloud/seed/nocloud/{name}", volume.read(name))
    root.put("/etc/cloud/cloud.cfg.d/99-test-nocloud.cfg", "datasource_list: [NoCloud]\n")
    done = root.run(STAGES)
    result = json.loads(root.path("/var/lib/cloud/data/result.json").read_text())
    assert result["v1"]["datasource"].startswith("DataSourceNoCloud"), done.stderr[-3000:]
    return root


def _groups(root: Chroot, user: str) -> set[str]:
    done = root.run(f"id -nG {user}")
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def _sshd(root: Chroot) -> dict[str, str]:
    """sshd's own reading of its configuration (`sshd -T`), drop-in files included."""
    done = root.run("mkdir -p /run/sshd && /usr/sbin/sshd -T")
    assert done.returncode == 0, done.stderr
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


def _flash(packed: Packed, layout: str, tmp_path: Path, *args: str, stdin: str = "") -> Path:
    key = tmp_path / "id.pub"
    key.write_text(KEY + "\n")
    card = tmp_path / "card.img"
    proc = run("flash", packed(layout, "xz"), card, "--ssh-key", key, *args, stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    return card


def test_the_user_keeps_the_distributions_groups(packed: Packed, tmp_path: Path) -> None:
    card = _flash(packed, "raspios_trixie", tmp_path, "--hostname", "brig", "--user",
                  "student")
    root = _first_boot(card, tmp_path)
    assert _groups(root, "student") >= DEBIAN_GROUPS
    keys = root.path("/home/student/.ssh/authorized_keys").read_text()
    assert KEY in keys
    assert root.path("/etc/hostname").read_text().strip() == "brig"
    sudo = root.run("sudo -l -U student")
    assert "(ALL) NOPASSWD: ALL" in sudo.stdout, sudo.stdout + sudo.stderr
    # No password was given: the account is locked and SSH takes keys only.
    shadow = root.run("getent shadow student").stdout.split(":")
    assert shadow[1].startswith("!")
    assert _sshd(root)["passwordauthentication"] == "no"


def test_hypriot_user_data_is_merged_not_replaced(packed: Packed, tmp_path: Path) -> None:
    """HypriotOS 1.7's own user creates pirate in docker and video and runs its commands: all
    kept; the hostname, the key and the password are pifleet's."""
    card = _flash(packed, "hypriot_17", tmp_path, "--hostname", "brig")
    root = _first_boot(card, tmp_path)
    assert {"users", "docker", "video"} <= _groups(root, "pirate")
    assert KEY in root.path("/home/pirate/.ssh/authorized_keys").read_text()
    assert root.path("/etc/hostname").read_text().strip() == "brig"
    # The image's well-known password (hypriot) is not left on a key-only card.
    shadow = root.run("getent shadow pirate").stdout.split(":")
    assert shadow[1].startswith("!"), shadow
    assert _sshd(root)["passwordauthentication"] == "no"
    assert root.path("/var/lib/hypriot-runcmd-done").exists()  # the image's runcmd ran
    sudo = root.run("sudo -l -U pirate")
    assert "(ALL) NOPASSWD: ALL" in sudo.stdout


def test_a_password_card_keeps_password_logins(packed: Packed, tmp_path: Path) -> None:
    card = _flash(packed, "hypriot_17", tmp_path, "--hostname", "brig", "--password",
                  stdin="s3cret-pass\ns3cret-pass\n")
    root = _first_boot(card, tmp_path)
    shadow = root.run("getent shadow pirate").stdout.split(":")
    assert shadow[1].startswith("$6$")
    check = root.run(f"python3 -c 'import crypt; print(crypt.crypt(\"s3cret-pass\", "
                     f"\"{shadow[1]}\") == \"{shadow[1]}\")'")
    assert check.stdout.strip() == "True", check.stderr
    assert _sshd(root)["passwordauthentication"] == "yes"


def test_another_user_is_added_beside_the_images_own(packed: Packed, tmp_path: Path) -> None:
    card = _flash(packed, "hypriot_17", tmp_path, "--hostname", "brig", "--user", "student")
    root = _first_boot(card, tmp_path)
    assert _groups(root, "student") >= DEBIAN_GROUPS
    assert KEY in root.path("/home/student/.ssh/authorized_keys").read_text()
    assert "docker" in _groups(root, "pirate")


def test_replace_user_data_leaves_the_images_own_out(packed: Packed, tmp_path: Path) -> None:
    card = _flash(packed, "hypriot_17", tmp_path, "--hostname", "brig",
                  "--replace-user-data")
    root = _first_boot(card, tmp_path)
    groups = _groups(root, "pirate")
    assert groups >= DEBIAN_GROUPS and "docker" not in groups
    assert not root.path("/var/lib/hypriot-runcmd-done").exists()
    assert images.HYPRIOT_USER_DATA not in boot_volume(card).read("user-data").decode()
