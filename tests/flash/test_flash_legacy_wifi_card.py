"""A HypriotOS 1.0-1.6-like card gets the Wi-Fi passphrase in device-init.yaml, with a warning
(root)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from flashhelp import boot_volume, run


def test_device_init_card_carries_the_passphrase_and_warns(
        packed: Callable[[str, str], Path], tmp_path: Path) -> None:
    out = tmp_path / "card.img"
    proc = run("flash", packed("hypriot_16", "raw"), out, "--hostname", "brig",
               "--wifi-ssid", "lab", "--wifi-password", "wifi-secret-1", "--wifi-country",
               "DE")
    assert proc.returncode == 0, proc.stderr
    assert "stored in clear in device-init.yaml" in proc.stderr
    assert "wifi-secret-1" not in proc.stdout + proc.stderr
    config = yaml.safe_load(boot_volume(out).read("device-init.yaml"))
    assert config["wifi"]["interfaces"]["wlan0"] == {"ssid": "lab",
                                                     "password": "wifi-secret-1"}
