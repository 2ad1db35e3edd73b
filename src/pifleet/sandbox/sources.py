"""Where this machine gets Debian packages from, read at run time.

The sandbox never names a mirror of its own: the base rootfs and the nodes' apt (through the
proxy on the bridge) use the mirror this machine is already configured with.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

DEB822_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
ONE_LINE_SOURCES = Path("/etc/apt/sources.list")


@dataclass(frozen=True)
class Mirror:
    """A Debian archive: its URI and the suites this machine uses from it."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...] = ("main",)


def parse_deb822(text: str) -> list[dict[str, str]]:
    """Split deb822 text into stanzas of field -> value (continuation lines joined)."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last_key: str | None = None
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, last_key = {}, None
            continue
        if raw[0] in " \t" and last_key is not None:
            current[last_key] += " " + raw.strip()
            continue
        key, sep, value = raw.partition(":")
        if not sep:
            continue
        last_key = key.strip().lower()
        current[last_key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def _is_main_archive(suites: list[str]) -> bool:
    # The security archive has a different layout; the base system comes from the main one.
    return bool(suites) and not all(s.endswith("-security") or "/" in s for s in suites)


def mirror_from_deb822(text: str) -> Mirror | None:
    """The first enabled `deb` stanza of the main archive, or None."""
    for stanza in parse_deb822(text):
        if "deb" not in stanza.get("types", "").split():
            continue
        if stanza.get("enabled", "yes").lower() == "no":
            continue
        suites = stanza.get("suites", "").split()
        uris = stanza.get("uris", "").split()
        if uris and _is_main_archive(suites):
            components = tuple(stanza.get("components", "main").split()) or ("main",)
            return Mirror(uris[0].rstrip("/"), tuple(suites), components)
    return None


def mirror_from_one_line(text: str) -> Mirror | None:
    """The first `deb [OPTIONS] URI SUITE COMPONENT...` line of the main archive, or None."""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0]
        if "[" in line:  # drop the `[arch=... signed-by=...]` options
            line = line[:line.index("[")] + line[line.index("]") + 1:] if "]" in line else ""
        words = line.split()
        if len(words) >= 3 and words[0] == "deb" and _is_main_archive([words[2]]):
            return Mirror(words[1].rstrip("/"), (words[2],), tuple(words[3:]) or ("main",))
    return None


def security_from_deb822(text: str) -> str | None:
    """The URI of the enabled security archive stanza, or None."""
    for stanza in parse_deb822(text):
        suites = stanza.get("suites", "").split()
        uris = stanza.get("uris", "").split()
        enabled = stanza.get("enabled", "yes").lower() != "no"
        if enabled and uris and suites and all(s.endswith("-security") for s in suites):
            return uris[0].rstrip("/")
    return None


def node_sources(mirror: Mirror, suite: str, security_uri: str | None = None) -> str:
    """A deb822 `debian.sources` for a node running `suite`, from this machine's mirror."""
    components = " ".join(mirror.components)
    text = (f"Types: deb\nURIs: {mirror.uri}\nSuites: {suite} {suite}-updates\n"
            f"Components: {components}\n"
            f"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    if security_uri:
        text += (f"\nTypes: deb\nURIs: {security_uri}\nSuites: {suite}-security\n"
                 f"Components: {components}\n"
                 f"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    return text


def host_security_uri(deb822: Path = DEB822_SOURCES) -> str | None:
    """This machine's security archive URI (deb822 form only), or None."""
    return security_from_deb822(deb822.read_text()) if deb822.is_file() else None


# apt settings of this machine that nodes must share to use the same mirror: a snapshot
# mirror's Release files are past their Valid-Until date, and apt refuses them unless told.
SHARED_APT_SETTINGS = ("Acquire::Check-Valid-Until", "Acquire::Check-Date")


def shared_apt_settings(dump: str) -> list[str]:
    """The lines of `apt-config dump` output that nodes must copy (see SHARED_APT_SETTINGS)."""
    found = []
    for line in dump.splitlines():
        key, _, value = line.strip().partition(" ")
        if key in SHARED_APT_SETTINGS and value.strip('";') == "false":
            found.append(f'{key} "false";')
    return found


def host_apt_settings() -> list[str]:
    """`shared_apt_settings` of this machine ([] when apt-config is missing)."""
    try:
        proc = subprocess.run(["apt-config", "dump"], capture_output=True, text=True,
                              check=False, timeout=30)
    except OSError:
        return []
    return shared_apt_settings(proc.stdout) if proc.returncode == 0 else []


def host_mirror(deb822: Path = DEB822_SOURCES, one_line: Path = ONE_LINE_SOURCES) -> Mirror:
    """This machine's Debian mirror. Raises LookupError naming the files it read."""
    if deb822.is_file():
        found = mirror_from_deb822(deb822.read_text())
        if found:
            return found
    if one_line.is_file():
        found = mirror_from_one_line(one_line.read_text())
        if found:
            return found
    raise LookupError(f"no Debian mirror found in {deb822} or {one_line}")
