"""Images known by name, with the publishers' own download addresses and checksums.

Checksums are the publishers' figures for the file as downloaded. Where no figure could be
confirmed, the entry names the publisher's checksum file instead, read at download time.
"""

from __future__ import annotations

from dataclasses import dataclass

from pifleet.errors import BadInput


@dataclass(frozen=True)
class Entry:
    """One catalog image."""

    name: str
    title: str
    url: str
    sha256: str | None = None
    sha256_url: str | None = None  # the publisher's checksum file, when no figure is pinned
    note: str = ""


CATALOG: tuple[Entry, ...] = (
    Entry(
        name="hypriotos-1.7.1",
        title="HypriotOS 1.7.1 (Debian 9, armhf; the practical's image, unmaintained)",
        url="https://github.com/hypriot/image-builder-rpi/releases/download/v1.7.1/"
            "hypriotos-rpi-v1.7.1.img.zip",
        # No independent copy of the figure could be confirmed, so none is pinned here: the
        # release's own `.sha256` asset (linked from the HypriotOS downloads page) is read.
        sha256_url="https://github.com/hypriot/image-builder-rpi/releases/download/v1.7.1/"
                   "hypriotos-rpi-v1.7.1.img.zip.sha256",
        note="reads cloud-init from /boot (facts.md section 1)",
    ),
    Entry(
        name="raspios-lite-arm64",
        title="Raspberry Pi OS Lite 64-bit, 2025-11-24 (Debian 13 Trixie)",
        url="https://downloads.raspberrypi.com/raspios_lite_arm64/images/"
            "raspios_lite_arm64-2025-11-24/2025-11-24-raspios-trixie-arm64-lite.img.xz",
        sha256="1d448a6e665e1ae8100bc28b35408619ec626a2fddfd6579ec99e7996fa09a56",
        sha256_url="https://downloads.raspberrypi.com/raspios_lite_arm64/images/"
                   "raspios_lite_arm64-2025-11-24/2025-11-24-raspios-trixie-arm64-lite.img.xz"
                   ".sha256",
    ),
    Entry(
        name="ubuntu-server-24.04-arm64",
        title="Ubuntu Server 24.04.3 LTS for Raspberry Pi (arm64)",
        url="https://cdimage.ubuntu.com/releases/24.04.3/release/"
            "ubuntu-24.04.3-preinstalled-server-arm64+raspi.img.xz",
        sha256="9bb1799cee8965e6df0234c1c879dd35be1d87afe39b84951f278b6bd0433e56",
        sha256_url="https://cdimage.ubuntu.com/releases/24.04.3/release/SHA256SUMS",
    ),
)

ALIASES = {
    "hypriotos": "hypriotos-1.7.1",
    "raspios": "raspios-lite-arm64",
    "raspios-lite": "raspios-lite-arm64",
    "ubuntu-server": "ubuntu-server-24.04-arm64",
    "ubuntu": "ubuntu-server-24.04-arm64",
}


def find(name: str) -> Entry | None:
    """The entry called `name` (or an alias), else None."""
    name = ALIASES.get(name, name)
    return next((e for e in CATALOG if e.name == name), None)


def get(name: str) -> Entry:
    """The entry called `name`; BadInput listing the catalog otherwise."""
    entry = find(name)
    if entry is None:
        names = ", ".join(e.name for e in CATALOG)
        raise BadInput(f"{name!r} is not a file, URL or catalog image ({names})")
    return entry
