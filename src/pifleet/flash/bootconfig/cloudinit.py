"""cloud-init NoCloud seed files: `user-data`, `meta-data` and `network-config`.

Read from the boot partition by HypriotOS >= 1.7, Ubuntu Server and Raspberry Pi OS Trixie
images from late 2025 (facts.md section 5).
"""

from __future__ import annotations

import shlex
from typing import Any

from pifleet.flash.bootconfig.settings import FirstBoot

# facts.md section 5: cloud-init's ssh module does not enable sshd on Raspberry Pi OS.
ENABLE_SSH = "systemctl enable --now ssh 2>/dev/null || systemctl enable --now sshd || true"


def user_data(boot: FirstBoot) -> str:
    """The `#cloud-config` document."""
    user: dict[str, Any] = {
        "name": boot.user,
        "groups": ["adm", "sudo", "users"],
        "shell": "/bin/bash",
        "sudo": "ALL=(ALL) NOPASSWD:ALL",
        "lock_passwd": boot.password_hash is None,
    }
    if boot.password_hash:
        user["passwd"] = boot.password_hash
    if boot.ssh_keys:
        user["ssh_authorized_keys"] = list(boot.ssh_keys)
    # facts.md section 5: the singular `user:` replaces the image's default user, so no
    # second account (pi, ubuntu) with a known password is left behind.
    config: dict[str, Any] = {
        "hostname": boot.hostname,
        "manage_etc_hosts": True,
        "preserve_hostname": False,
        "user": user,
        "ssh_pwauth": boot.password_hash is not None,
    }
    if boot.timezone:
        config["timezone"] = boot.timezone
    if boot.locale:
        config["locale"] = boot.locale
    if boot.keyboard:
        config["keyboard"] = {"layout": boot.keyboard}
    commands = [["sh", "-c", ENABLE_SSH]]
    if boot.wifi:
        country = shlex.quote(boot.wifi.country)
        commands.append(["sh", "-c", "command -v raspi-config >/dev/null && "
                         f"raspi-config nonint do_wifi_country {country} || true"])
    config["runcmd"] = commands
    return "#cloud-config\n" + _yaml().safe_dump(config, sort_keys=False, default_flow_style=False)


def meta_data(boot: FirstBoot) -> str:
    """`instance-id` must be new for every card, or cloud-init skips the seed as already run."""
    return _yaml().safe_dump({"instance-id": boot.instance_id, "local-hostname": boot.hostname},
                          sort_keys=False)


def network_config(boot: FirstBoot) -> str | None:
    """Netplan v2; None when DHCP on Ethernet is all that is wanted."""
    if boot.wifi is None and boot.network is None:
        return None
    eth0: dict[str, Any] = {"dhcp4": True, "optional": True}
    if boot.network:
        eth0 = {"dhcp4": False, "optional": True, "addresses": [str(boot.network.address)]}
        if boot.network.gateway:
            eth0["routes"] = [{"to": "default", "via": str(boot.network.gateway)}]
        if boot.network.dns:
            eth0["nameservers"] = {"addresses": [str(d) for d in boot.network.dns]}
    config: dict[str, Any] = {"version": 2, "ethernets": {"eth0": eth0}}
    if boot.wifi:
        # facts.md section 5: keep eth0 on DHCP (above) when Wi-Fi is added.
        config["wifis"] = {"wlan0": {
            "dhcp4": True,
            "optional": True,
            "regulatory-domain": boot.wifi.country,
            "access-points": {boot.wifi.ssid: {"password": boot.wifi.psk}},
        }}
    return _yaml().safe_dump(config, sort_keys=False)


def files(boot: FirstBoot) -> dict[str, str]:
    """Every seed file to write, by name."""
    out = {"user-data": user_data(boot), "meta-data": meta_data(boot)}
    network = network_config(boot)
    if network:
        out["network-config"] = network
    return out


def _yaml() -> Any:
    """PyYAML, imported on first use: most flashes (`--format none`, other formats) never
    need it, and it is a fifth of the command's start-up."""
    import yaml

    return yaml
