"""First-boot configuration written into the FAT boot partition.

Formats: `cloud-init`, `firstrun`, `occidentalis`, `device-init`, `none`. `auto` decides from
what the boot partition holds, never from the image's file name (facts.md section 5: Raspberry
Pi OS changed format within one release).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pifleet.errors import Failed
from pifleet.flash.bootconfig import cloudinit, cmdline, firstrun, legacy
from pifleet.flash.bootconfig.settings import (
    FirstBoot,
    Network,
    Wifi,
    hash_password,
    make_network,
    make_wifi,
    wifi_psk,
)
from pifleet.flash.fat import FatVolume

__all__ = [
    "FORMATS",
    "Detection",
    "FirstBoot",
    "Network",
    "Wifi",
    "Written",
    "apply",
    "detect",
    "hash_password",
    "make_network",
    "make_wifi",
    "render",
    "wifi_psk",
]

FORMATS = ("auto", "cloud-init", "firstrun", "occidentalis", "device-init", "none")
SEED_FILES = ("user-data", "meta-data", "network-config")


@dataclass(frozen=True)
class Detection:
    """Which format a boot partition reads, and the evidence."""

    format: str | None
    reason: str
    raspios: bool = False


def detect(volume: FatVolume) -> Detection:
    """Look at the boot partition's files and say which first-boot format the image reads."""
    names = {n.lower() for n in volume.list()}
    raspios = False
    if "issue.txt" in names:
        raspios = b"Raspberry Pi reference" in volume.read("issue.txt")
    seeds = sorted(n for n in SEED_FILES if n in names)
    if seeds:
        return Detection("cloud-init", f"boot partition carries {', '.join(seeds)}", raspios)
    if raspios:
        return Detection("firstrun", "Raspberry Pi OS (issue.txt) without cloud-init seed "
                         "files: Bookworm-style firstrun.sh", raspios)
    if "device-init.yaml" in names:
        return Detection("device-init", "boot partition carries device-init.yaml")
    if "occidentalis.txt" in names:
        return Detection("occidentalis", "boot partition carries occidentalis.txt")
    return Detection(None, "no cloud-init seed, issue.txt, device-init.yaml or "
                     "occidentalis.txt in the boot partition")


def render(fmt: str, boot: FirstBoot) -> dict[str, str]:
    """The files a format writes, by name (cloud-init: pifleet's own, not merged)."""
    if fmt == "cloud-init":
        return cloudinit.files(boot)[0]
    if fmt == "firstrun":
        return {"firstrun.sh": firstrun.script(boot)}
    if fmt == "occidentalis":
        return legacy.occidentalis(boot)
    if fmt == "device-init":
        return legacy.device_init(boot)
    return {}


@dataclass
class Written:
    """What `apply` did: the format used, files written, and warnings for the user."""

    format: str
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reason: str = ""


def apply(volume: FatVolume, boot: FirstBoot, requested: str = "auto",
          merge_user_data: bool = True) -> Written:
    """Write `boot` into the boot partition in the requested (or detected) format.

    cloud-init: the image's own user-data, if any, is merged with pifleet's unless
    `merge_user_data` is off (then pifleet's replaces it).
    """
    found = detect(volume)
    result = Written(format=requested, reason=found.reason)
    if requested == "auto":
        if found.format is None:
            raise Failed(f"cannot tell which first-boot format this image reads "
                         f"({found.reason}); choose one with --format")
        result.format = found.format
    elif requested != "none" and found.format != requested:
        reads = found.format or "none of the known formats"
        result.warnings.append(f"the image reads {reads} ({found.reason}); the {requested} "
                               f"files written now will probably be ignored")
    fmt = result.format
    if fmt == "none":
        return result
    if fmt in ("occidentalis", "device-init"):
        ignored = legacy.ignored_settings(boot)
        if ignored:
            result.warnings.append(f"{fmt} cannot carry: {', '.join(ignored)}")
        name = "occidentalis.txt" if fmt == "occidentalis" else "device-init.yaml"
        result.warnings += legacy.wifi_warnings(boot, name)
    files = render(fmt, boot)
    if fmt == "cloud-init" and merge_user_data and volume.exists("user-data"):
        files, notes = cloudinit.files(boot, volume.read("user-data"))
        result.warnings += notes
        result.reason += "; merged into the image's own user-data"
    for name, text in files.items():
        volume.write(name, text.encode())
        result.files.append(name)
    additions: list[str] = []
    drop: tuple[str, ...] = ()
    if fmt == "firstrun":
        additions = [firstrun.CMDLINE_ADDITION]
        drop = ("systemd.run", "systemd.unit=kernel-command-line")
    elif fmt == "cloud-init" and found.raspios:
        # facts.md section 5: Raspberry Pi OS reads the NoCloud seed when told so on cmdline.
        additions = [f"ds=nocloud;i={boot.instance_id}"]
        drop = ("ds=",)
    if additions:
        if not volume.exists("cmdline.txt"):
            raise Failed("the boot partition has no cmdline.txt to add the first-boot hook to")
        text = volume.read("cmdline.txt").decode(errors="replace")
        volume.write("cmdline.txt", cmdline.edit(text, additions, drop).encode())
        result.files.append("cmdline.txt")
    return result
