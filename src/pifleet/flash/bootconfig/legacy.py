"""HypriotOS before 1.7: `occidentalis.txt` (oldest) and `device-init.yaml` (1.0 to 1.6).

Neither format knows users or SSH keys: those images keep their `pirate` user, and the key is
installed later by `pifleet trust`.

Both take the Wi-Fi passphrase itself, not the derived key: hypriot/device-init
(`cmd/wifi_set.go`) runs PBKDF2 over the `password` it reads, so a 64-hex key would be hashed
a second time, and hypriot/flash documents and writes `wifi_password=` as the user's plain
Wi-Fi password. The passphrase therefore lands in clear on the card: `apply` warns.
"""

from __future__ import annotations

from typing import Any

from pifleet.flash.bootconfig.settings import FirstBoot


def occidentalis(boot: FirstBoot) -> dict[str, str]:
    """`occidentalis.txt`: key=value lines."""
    lines = [f"hostname={boot.hostname}"]
    if boot.wifi:
        lines += [f"wifi_ssid={boot.wifi.ssid}", f"wifi_password={boot.wifi.passphrase}"]
    return {"occidentalis.txt": "\n".join(lines) + "\n"}


def device_init(boot: FirstBoot) -> dict[str, str]:
    """`device-init.yaml`: hostname and Wi-Fi for wlan0."""
    config: dict[str, Any] = {"hostname": boot.hostname}
    if boot.wifi:
        config["wifi"] = {"interfaces": {"wlan0": {"ssid": boot.wifi.ssid,
                                                   "password": boot.wifi.passphrase}}}
    import yaml  # on first use: it is a fifth of the command's start-up

    return {"device-init.yaml": yaml.safe_dump(config, sort_keys=False)}


def wifi_warnings(boot: FirstBoot, file_name: str) -> list[str]:
    """What the user must know about the Wi-Fi secret these formats store."""
    if boot.wifi is None:
        return []
    if boot.wifi.passphrase.lower() == boot.wifi.psk:
        return [f"{file_name} needs the Wi-Fi passphrase, and a 64-hex-digit key was given: "
                f"the card's reader derives a key from it again, so Wi-Fi will not connect"]
    return [f"the Wi-Fi passphrase is stored in clear in {file_name} on the card's boot "
            f"partition (these HypriotOS versions derive the key themselves): anyone holding "
            f"the card can read it"]


def ignored_settings(boot: FirstBoot) -> list[str]:
    """Settings these formats cannot carry, to warn about."""
    missing = []
    if boot.password_hash:
        missing.append("password")
    if boot.ssh_keys:
        missing.append("SSH key")
    if boot.network:
        missing.append("static address")
    if boot.timezone or boot.locale or boot.keyboard:
        missing.append("timezone/locale/keyboard")
    if boot.user != "pirate":
        missing.append(f"user {boot.user!r} (the image keeps 'pirate')")
    return missing
