"""First-boot formats: rendering, cmdline.txt edits, Wi-Fi keys, validation."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from pifleet.errors import BadInput, Failed
from pifleet.flash.bootconfig import cloudinit, cmdline, firstrun, legacy
from pifleet.flash.bootconfig.settings import (
    FirstBoot,
    hash_password,
    make_network,
    make_wifi,
    wifi_psk,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0123456789abcdef0123456789abcdef01234567 me@laptop"


def full() -> FirstBoot:
    return FirstBoot(hostname="brig", user="student", password_hash="$6$salt$hash",
                     ssh_keys=(KEY,), wifi=make_wifi("lab net", "correct horse", "de"),
                     network=make_network("192.168.5.20/24", "192.168.5.1", ["192.168.5.1"]),
                     timezone="Europe/Berlin", locale="de_DE.UTF-8", keyboard="de")


def test_wifi_psk_matches_the_ieee_802_11i_test_vector() -> None:
    assert wifi_psk("IEEE", "password") == (
        "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e")


@pytest.mark.parametrize("passphrase", ["short", "x" * 64])
def test_wifi_passphrase_length_is_checked(passphrase: str) -> None:
    with pytest.raises(BadInput):
        wifi_psk("lab", passphrase)


@pytest.mark.parametrize(("text", "append", "drop", "expected"), [
    ("a b c\n", ["d"], (), "a b c d\n"),
    ("a b c", ["b"], (), "a b c\n"),
    ("a ds=old b\n", ["ds=nocloud;i=x"], ("ds=",), "a b ds=nocloud;i=x\n"),
    ("a systemd.run=/x b\r\n", ["systemd.run=/boot/firstrun.sh y"], ("systemd.run",),
     "a b systemd.run=/boot/firstrun.sh y\n"),
    ("a b\n\n\n", ["c"], (), "a b c\n"),
])
def test_cmdline_stays_one_line(text: str, append: list[str], drop: tuple[str, ...],
                                expected: str) -> None:
    assert cmdline.edit(text, append, drop) == expected


def test_cmdline_with_two_lines_is_refused() -> None:
    with pytest.raises(Failed, match="more than one line"):
        cmdline.edit("a\nb\n", ["c"])


def test_cloud_init_user_data_carries_every_setting() -> None:
    boot = full()
    text, warnings = cloudinit.user_data(boot)
    assert text.startswith("#cloud-config\n") and warnings == []
    data = yaml.safe_load(text)
    assert data["hostname"] == "brig"
    assert data["user"]["name"] == "student"
    # facts.md section 9: `groups` would replace the distribution's default groups.
    assert "groups" not in data["user"]
    assert data["user"]["passwd"] == "$6$salt$hash"
    assert data["user"]["lock_passwd"] is False
    assert data["user"]["ssh_authorized_keys"] == [KEY]
    assert data["timezone"] == "Europe/Berlin"
    assert data["locale"] == "de_DE.UTF-8"
    assert any("systemctl enable --now ssh" in " ".join(c) for c in data["runcmd"])
    assert "correct horse" not in text


def test_meta_data_instance_id_is_unique_per_card() -> None:
    a = yaml.safe_load(cloudinit.meta_data(FirstBoot(hostname="a")))
    b = yaml.safe_load(cloudinit.meta_data(FirstBoot(hostname="a")))
    assert a["instance-id"] != b["instance-id"]
    assert a["local-hostname"] == "a"


def test_network_config_keeps_ethernet_when_wifi_is_added() -> None:
    boot = FirstBoot(hostname="a", wifi=make_wifi("lab", "correct horse", "DE"))
    data = yaml.safe_load(cloudinit.network_config(boot) or "")
    assert data["ethernets"]["eth0"]["dhcp4"] is True
    wlan = data["wifis"]["wlan0"]
    assert wlan["regulatory-domain"] == "DE"
    assert wlan["access-points"]["lab"]["password"] == wifi_psk("lab", "correct horse")
    assert cloudinit.network_config(FirstBoot(hostname="a")) is None


def test_network_config_static_address() -> None:
    data = yaml.safe_load(cloudinit.network_config(full()) or "")
    eth0 = data["ethernets"]["eth0"]
    assert eth0["addresses"] == ["192.168.5.20/24"]
    assert eth0["routes"] == [{"to": "default", "via": "192.168.5.1"}]


def test_firstrun_script_is_valid_bash_and_removes_itself() -> None:
    script = firstrun.script(full())
    assert script.startswith("#!/bin/bash\n")
    subprocess.run(["bash", "-n"], input=script.encode(), check=True)
    assert "NEW_HOSTNAME=brig" in script
    assert KEY in script
    assert 'rm -f "$BOOT/firstrun.sh"' in script
    assert "systemd.run=" in script  # the cmdline addition is removed again
    assert "correct horse" not in script
    assert wifi_psk("lab net", "correct horse") in script


def test_firstrun_quotes_hostile_values() -> None:
    boot = FirstBoot(hostname="brig", password_hash="$6$a$b'; rm -rf / #")
    script = firstrun.script(boot)
    subprocess.run(["bash", "-n"], input=script.encode(), check=True)
    assert "PASSWORD_HASH='$6$a$b'\"'\"'; rm -rf / #'" in script


def test_legacy_formats() -> None:
    boot = FirstBoot(hostname="brig", wifi=make_wifi("lab", "correct horse", "DE"))
    occi = legacy.occidentalis(boot)["occidentalis.txt"]
    assert occi.splitlines()[0] == "hostname=brig"
    assert "wifi_ssid=lab" in occi
    device = yaml.safe_load(legacy.device_init(boot)["device-init.yaml"])
    assert device["hostname"] == "brig"
    assert device["wifi"]["interfaces"]["wlan0"]["ssid"] == "lab"
    assert legacy.ignored_settings(full())


@pytest.mark.parametrize("kwargs", [
    {"hostname": "Bad_Name"}, {"hostname": "-x"}, {"hostname": "a", "user": "Root User"},
    {"hostname": "a", "ssh_keys": ("not a key",)},
    {"hostname": "a", "timezone": "Europe/Berlin; rm -rf /"},
    {"hostname": "a", "timezone": "../../etc/passwd"},
    {"hostname": "a", "locale": "en_GB.UTF-8\\1"},
])
def test_first_boot_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(BadInput):
        FirstBoot(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("address", "gateway"), [
    ("192.168.1.5", None), ("300.1.1.1/24", None), ("192.168.1.5/24", "10.0.0.1")])
def test_static_address_validation(address: str, gateway: str | None) -> None:
    with pytest.raises(BadInput):
        make_network(address, gateway, [])


def test_wifi_country_validation() -> None:
    with pytest.raises(BadInput):
        make_wifi("lab", "correct horse", "Germany")


def test_password_hash_is_sha512_crypt() -> None:
    hashed = hash_password("hypriot")
    assert hashed.startswith("$6$")
    assert "hypriot" not in hashed


UBUNTU_USER_DATA = b"""#cloud-config
chpasswd:
  expire: true
  users:
  - {name: ubuntu, password: ubuntu, type: text}
ssh_pwauth: true
hostname: ubuntu
runcmd:
  - [touch, /var/lib/image-ran]
packages: [avahi-daemon]
write_files:
  - {path: /etc/motd, content: hello}
users:
  - default
  - name: ops
    plain_text_passwd: ops
    groups: [adm]
"""


def test_merge_keeps_the_images_settings_and_takes_pifleets_login() -> None:
    boot = FirstBoot(hostname="brig", user="student", ssh_keys=(KEY,))
    text, warnings = cloudinit.user_data(boot, UBUNTU_USER_DATA)
    data = yaml.safe_load(text)
    assert data["hostname"] == "brig" and data["ssh_pwauth"] is False
    assert "chpasswd" not in data  # the image's known password for its default user
    assert data["packages"] == ["avahi-daemon"]
    assert data["write_files"] == [{"path": "/etc/motd", "content": "hello"}]
    assert data["runcmd"][0] == ["touch", "/var/lib/image-ran"]
    assert "systemctl enable --now ssh" in " ".join(data["runcmd"][-1])
    # Not in the image's list: pifleet's user becomes the default user (with the
    # distribution's groups); the image's own users stay, with a warning for a password.
    assert data["user"]["name"] == "student" and "groups" not in data["user"]
    assert data["users"][:2] == ["default", {"name": "ops", "plain_text_passwd": "ops",
                                             "groups": ["adm"]}]
    assert warnings == ["the image's user-data also creates user 'ops' with a password of its "
                        "own; --replace-user-data leaves it out"]


def test_merge_into_the_images_entry_for_the_same_user() -> None:
    image = (b"#cloud-config\nusers:\n  - name: pirate\n    groups: users,docker,video\n"
             b"    plain_text_passwd: hypriot\n    lock_passwd: false\n    shell: /bin/bash\n")
    boot = FirstBoot(hostname="brig", user="pirate", ssh_keys=(KEY,))
    text, warnings = cloudinit.user_data(boot, image)
    data = yaml.safe_load(text)
    assert "user" not in data and warnings == []
    (entry,) = data["users"]
    assert entry["groups"] == "users,docker,video" and entry["shell"] == "/bin/bash"
    assert "plain_text_passwd" not in entry and entry["lock_passwd"] is True
    assert entry["ssh_authorized_keys"] == [KEY]


@pytest.mark.parametrize(("image", "warned"), [
    (b"", False),
    (b"#cloud-config\n", False),
    (b"#!/bin/sh\necho hi\n", True),
    (b"#cloud-config\n- a list\n", True),
    (b"#cloud-config\nusers: [\n", True),
])
def test_an_image_user_data_that_cannot_be_merged_is_replaced(image: bytes, warned: bool
                                                              ) -> None:
    text, warnings = cloudinit.user_data(FirstBoot(hostname="brig"), image)
    assert yaml.safe_load(text)["user"]["name"] == "pirate"
    assert bool(warnings) == warned
