"""The firstrun.sh pifleet writes, run in a chroot of a Debian root as the card's first boot
would run it: with Raspberry Pi OS's `imager_custom` and `userconf` present (stand-ins that
record their calls) and without them (pifleet's own steps, checked by their real effects:
the renamed account and its groups, the key, sudo, sshd's own reading of its settings).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from flashhelp import boot_volume, run
from testroot import Chroot

from pifleet.flash.bootconfig import firstrun, make_wifi, wifi_psk
from pifleet.flash.bootconfig.settings import FirstBoot, make_network

Packed = Callable[[str, str], Path]

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0123456789abcdef0123456789abcdef01234567 me@lab"
CALLS = "/var/log/stand-in-calls"
# Stand-ins for commands a chroot cannot run for real (systemd is not running) or that only
# Raspberry Pi OS has: each records its arguments, one call a line.
RECORDING = f'#!/bin/sh\necho "$(basename "$0") $*" >>{CALLS}\n'
STAND_INS = ("/usr/local/sbin/systemctl", "/usr/local/sbin/raspi-config",
             "/usr/local/sbin/rfkill")
RASPIOS_TOOLS = ("/usr/lib/raspberrypi-sys-mods/imager_custom", "/usr/lib/userconf-pi/userconf")

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare")


def _card(packed: Packed, tmp_path: Path, *args: str, stdin: str = "") -> Path:
    key = tmp_path / "id.pub"
    key.write_text(KEY + "\n")
    card = tmp_path / "card.img"
    proc = run("flash", packed("raspios_bookworm", "gz"), card, "--hostname", "brig",
               "--user", "student", "--ssh-key", key, "--wifi-ssid", "lab net",
               "--wifi-password", "correct horse", "--wifi-country", "DE", "--timezone",
               "Europe/Berlin", "--keyboard", "de", *args, stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    return card


def _first_boot(card: Path, tmp_path: Path, raspios_tools: bool) -> tuple[Chroot, list[str]]:
    """A Raspberry-Pi-OS-like root (user pi, uid 1000, in video and audio), the card's boot
    files in /boot/firmware, then firstrun.sh run as systemd would run it."""
    root = Chroot(tmp_path / "root")
    setup = root.run("useradd -m -u 1000 -s /bin/bash -G video,audio,sudo pi && "
                     "printf '127.0.0.1\\tlocalhost\\n127.0.1.1\\traspberrypi\\n' >/etc/hosts && "
                     "echo raspberrypi >/etc/hostname")
    assert setup.returncode == 0, setup.stderr
    volume = boot_volume(card)
    for name in ("firstrun.sh", "cmdline.txt"):
        root.put(f"/boot/firmware/{name}", volume.read(name), 0o755)
    for path in STAND_INS + (RASPIOS_TOOLS if raspios_tools else ()):
        root.put(path, RECORDING, 0o755)
    done = root.run("PATH=/usr/local/sbin:$PATH /boot/firmware/firstrun.sh")
    assert done.returncode == 0, done.stdout + done.stderr
    calls = root.path(CALLS)
    return root, calls.read_text().splitlines() if calls.exists() else []


def _sshd(root: Chroot) -> dict[str, str]:
    done = root.run("mkdir -p /run/sshd && /usr/sbin/sshd -T")
    assert done.returncode == 0, done.stderr
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


def _removed_itself(root: Chroot) -> None:
    assert not root.path("/boot/firmware/firstrun.sh").exists()
    cmdline = root.path("/boot/firmware/cmdline.txt").read_text()
    assert "systemd.run" not in cmdline and cmdline.count("\n") == 1


def test_without_raspios_tools_pifleets_own_steps_do_it(packed: Packed, tmp_path: Path
                                                        ) -> None:
    root, calls = _first_boot(_card(packed, tmp_path), tmp_path, raspios_tools=False)
    assert root.path("/etc/hostname").read_text() == "brig\n"
    assert "127.0.1.1\tbrig" in root.path("/etc/hosts").read_text()
    groups = set(root.run("id -nG student").stdout.split())
    assert {"video", "audio", "sudo"} <= groups  # the renamed first user keeps its groups
    assert root.run("id -u student").stdout.strip() == "1000"
    keys = root.path("/home/student/.ssh/authorized_keys")
    assert keys.read_text() == KEY + "\n"
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    assert "(ALL) NOPASSWD: ALL" in root.run("sudo -l -U student").stdout
    assert root.run("getent shadow student").stdout.split(":")[1].startswith("!")
    assert _sshd(root)["passwordauthentication"] == "no"  # key-only card
    assert "systemctl enable ssh" in calls
    assert "raspi-config nonint do_wifi_country DE" in calls
    wifi = root.path("/etc/NetworkManager/system-connections/pifleet-wifi.nmconnection")
    assert f"psk={wifi_psk('lab net', 'correct horse')}" in wifi.read_text()
    assert oct(wifi.stat().st_mode & 0o777) == "0o600"
    assert root.path("/etc/localtime").resolve().name == "Berlin"
    _removed_itself(root)


def test_with_imager_custom_raspios_does_it_as_for_imager(packed: Packed, tmp_path: Path
                                                           ) -> None:
    root, calls = _first_boot(_card(packed, tmp_path), tmp_path, raspios_tools=True)
    psk = wifi_psk("lab net", "correct horse")
    assert calls[:3] == ["imager_custom set_hostname brig", "userconf student ",
                         f"imager_custom enable_ssh -k {KEY}"]
    assert f"imager_custom set_wlan lab net {psk} DE" in calls
    assert "imager_custom set_timezone Europe/Berlin" in calls
    assert "imager_custom set_keymap de" in calls
    # imager_custom did the work: pifleet's own hostname and sshd steps stayed out.
    assert root.path("/etc/hostname").read_text() == "raspberrypi\n"
    assert not root.path("/etc/ssh/sshd_config.d/01-pifleet.conf").exists()
    assert not any(c.startswith("systemctl") for c in calls)
    # The stand-in userconf renamed nobody: pifleet renamed pi, and the key is there.
    assert KEY in root.path("/home/student/.ssh/authorized_keys").read_text()
    _removed_itself(root)


def test_a_password_card_keeps_ssh_password_logins(packed: Packed, tmp_path: Path) -> None:
    card = _card(packed, tmp_path, "--password", stdin="s3cret-pass\ns3cret-pass\n")
    root, _ = _first_boot(card, tmp_path, raspios_tools=False)
    assert root.run("getent shadow student").stdout.split(":")[1].startswith("$6$")
    assert _sshd(root)["passwordauthentication"] == "yes"


@pytest.mark.skipif(shutil.which("shellcheck") is None,
                    reason="shellcheck is not installed (scripts/setup installs it)")
@pytest.mark.parametrize("boot", [
    FirstBoot(hostname="brig"),
    FirstBoot(hostname="brig", user="student", password_hash="$6$salt$" + "h" * 86,
              ssh_keys=(KEY, KEY.replace("me@lab", "other")),
              wifi=make_wifi("lab 'net'", "correct horse", "DE"),
              network=make_network("192.168.5.20/24", "192.168.5.1", ["192.168.5.1"]),
              timezone="Europe/Berlin", locale="de_DE.UTF-8", keyboard="de"),
], ids=["bare", "everything"])
def test_the_script_passes_shellcheck(boot: FirstBoot, tmp_path: Path) -> None:
    script = tmp_path / "firstrun.sh"
    script.write_text(firstrun.script(boot))
    done = subprocess.run(["shellcheck", "--severity=style", str(script)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout
