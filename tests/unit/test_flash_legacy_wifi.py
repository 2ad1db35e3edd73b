"""Old HypriotOS formats carry the Wi-Fi passphrase (their readers derive the key), with a
warning that it is stored in clear."""

from __future__ import annotations

import pytest
import yaml

from pifleet.errors import BadInput
from pifleet.flash.bootconfig import FirstBoot, legacy, make_wifi, wifi_psk

PASSPHRASE = "correct horse"


def _boot(passphrase: str = PASSPHRASE) -> FirstBoot:
    return FirstBoot(hostname="brig", wifi=make_wifi("lab", passphrase, "DE"))


def test_occidentalis_and_device_init_carry_the_passphrase() -> None:
    occi = legacy.occidentalis(_boot())["occidentalis.txt"].splitlines()
    assert f"wifi_password={PASSPHRASE}" in occi
    device = yaml.safe_load(legacy.device_init(_boot())["device-init.yaml"])
    assert device["wifi"]["interfaces"]["wlan0"]["password"] == PASSPHRASE
    psk = wifi_psk("lab", PASSPHRASE)
    assert psk not in "\n".join(occi)


def test_storing_the_passphrase_in_clear_is_warned_about() -> None:
    (warning,) = legacy.wifi_warnings(_boot(), "device-init.yaml")
    assert "in clear in device-init.yaml" in warning
    assert PASSPHRASE not in warning
    assert legacy.wifi_warnings(FirstBoot(hostname="brig"), "device-init.yaml") == []


def test_a_raw_key_cannot_work_and_says_so() -> None:
    key = wifi_psk("lab", PASSPHRASE)
    (warning,) = legacy.wifi_warnings(_boot(key), "occidentalis.txt")
    assert "will not connect" in warning and key not in warning


@pytest.mark.parametrize("bad", ["line\nbreak!", "tab\there1", "caf\u00e9-cr\u00e8me"])
def test_passphrase_must_be_printable_ascii(bad: str) -> None:
    with pytest.raises(BadInput, match="printable ASCII"):
        make_wifi("lab", bad, "DE")
