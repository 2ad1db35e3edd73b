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


# Keys that carry what pifleet sets: the image's own values for them are dropped in a merge.
# (The hostname, the login: password and SSH settings; Wi-Fi lives in network-config.)
OURS = ("hostname", "fqdn", "prefer_fqdn_over_hostname", "preserve_hostname",
        "manage_etc_hosts", "user", "ssh_pwauth", "ssh_authorized_keys", "ssh_import_id",
        "password", "chpasswd")
# A user entry's keys about logging in: pifleet's replace the image's for pifleet's user.
LOGIN = ("passwd", "hashed_passwd", "plain_text_passwd", "lock_passwd", "ssh_authorized_keys",
         "ssh_import_id", "ssh_redirect_user", "sudo")


def _user(boot: FirstBoot) -> dict[str, Any]:
    """pifleet's account. No `groups`: on a user entry it replaces the distribution's
    default groups (facts.md section 9: rpi-imager issue 1601), so the account gets those
    (gpio, i2c, video on Raspberry Pi OS) from the image's cloud.cfg."""
    user: dict[str, Any] = {
        "name": boot.user,
        "shell": "/bin/bash",
        "sudo": "ALL=(ALL) NOPASSWD:ALL",
        "lock_passwd": boot.password_hash is None,
    }
    if boot.password_hash:
        user["passwd"] = boot.password_hash
    if boot.ssh_keys:
        user["ssh_authorized_keys"] = list(boot.ssh_keys)
    return user


def _config(boot: FirstBoot) -> dict[str, Any]:
    # facts.md section 5: the singular `user:` replaces the image's default user, so no
    # second account (pi, ubuntu) with a known password is left behind.
    config: dict[str, Any] = {
        "hostname": boot.hostname,
        "manage_etc_hosts": True,
        "preserve_hostname": False,
        "user": _user(boot),
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
    return config


def user_data(boot: FirstBoot, image: bytes | None = None) -> tuple[str, list[str]]:
    """The `#cloud-config` document, merged into the image's own (`image`) when given.

    Returns the text and warnings for the user. The image's settings are kept (its users,
    runcmd, packages, write_files, ...), pifleet's added: the hostname, the login and SSH
    settings are pifleet's; pifleet's user, if the image already lists it, keeps the image's
    groups, shell and name but gets pifleet's key, password and sudo.
    """
    ours = _config(boot)
    warnings: list[str] = []
    theirs = _parse(image, warnings) if image is not None else None
    config = ours if theirs is None else _merge(theirs, ours, warnings)
    text = _yaml().safe_dump(config, sort_keys=False, default_flow_style=False)
    return "#cloud-config\n" + text, warnings


def _parse(image: bytes, warnings: list[str]) -> dict[str, Any] | None:
    """The image's user-data as a mapping, or None (with a warning) when it is not one."""
    text = image.decode(errors="replace")
    if not text.strip() or not text.lstrip().startswith("#cloud-config"):
        if text.strip():
            warnings.append("the image's user-data is not a #cloud-config document; "
                            "pifleet's replaces it")
        return None
    try:
        data = _yaml().safe_load(text)
    except _yaml().YAMLError as exc:
        warnings.append(f"the image's user-data does not parse ({exc}); pifleet's replaces it")
        return None
    if data is None:
        return None
    if not isinstance(data, dict):
        warnings.append("the image's user-data is not a mapping; pifleet's replaces it")
        return None
    return data


def _merge(theirs: dict[str, Any], ours: dict[str, Any], warnings: list[str]
           ) -> dict[str, Any]:
    merged = {k: v for k, v in theirs.items() if k not in OURS}
    user = ours["user"]
    users = theirs.get("users")
    if isinstance(users, list):
        kept: list[Any] = []
        found = False
        for entry in users:
            name = entry.get("name") if isinstance(entry, dict) else entry
            if name == user["name"]:
                found = True
                base = entry if isinstance(entry, dict) else {}
                kept.append({**{k: v for k, v in base.items() if k not in LOGIN}, **user})
                continue
            if isinstance(entry, dict) and any(k in entry for k in LOGIN[:3]):
                warnings.append(f"the image's user-data also creates user {name!r} with a "
                                f"password of its own; --replace-user-data leaves it out")
            kept.append(entry)
        merged["users"] = kept
        if found:
            ours = {k: v for k, v in ours.items() if k != "user"}
    for key, value in ours.items():
        if key in ("runcmd", "bootcmd") and isinstance(merged.get(key), list):
            merged[key] = [*merged[key], *value]
        else:
            merged[key] = value
    return merged


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


def files(boot: FirstBoot, image_user_data: bytes | None = None
          ) -> tuple[dict[str, str], list[str]]:
    """Every seed file to write, by name, and warnings (see `user_data`)."""
    text, warnings = user_data(boot, image_user_data)
    out = {"user-data": text, "meta-data": meta_data(boot)}
    network = network_config(boot)
    if network:
        out["network-config"] = network
    return out, warnings


def _yaml() -> Any:
    """PyYAML, imported on first use: most flashes (`--format none`, other formats) never
    need it, and it is a fifth of the command's start-up."""
    import yaml

    return yaml
