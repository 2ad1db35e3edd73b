"""Where this machine gets Debian packages from, read at run time.

The sandbox never names a mirror of its own: the base rootfs and the nodes' apt (through the
proxy on the bridge) use the mirror this machine is already configured with.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

APT_DIR = Path("/etc/apt")
# What Debian's own archives are made of; a third-party repository (its own suite names or
# components) is never taken for this machine's Debian mirror.
DEBIAN_COMPONENTS = frozenset({"main", "contrib", "non-free", "non-free-firmware"})
DEBIAN_SUITE = re.compile(
    r"[a-z]+(-(updates|security|backports|backports-sloppy|proposed-updates))?|[a-z]+/updates")


@dataclass(frozen=True)
class Mirror:
    """A Debian archive: its URI and the suites this machine uses from it."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...] = ("main",)

    @property
    def security(self) -> bool:
        """True for the security archive (its own layout and suites)."""
        return all(s.endswith("-security") or "/" in s for s in self.suites)


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


def _debian(uri: str, suites: list[str], components: list[str],
            signed_by: str = "") -> Mirror | None:
    # An entry with a key of its own that is not Debian's belongs to someone else.
    if signed_by and "debian-archive" not in signed_by:
        return None
    if not suites or not components or not set(components) <= DEBIAN_COMPONENTS:
        return None
    if not all(DEBIAN_SUITE.fullmatch(suite) for suite in suites):
        return None
    return Mirror(uri.rstrip("/"), tuple(suites), tuple(components))


def archives_from_deb822(text: str) -> list[Mirror]:
    """The Debian archives of every enabled `deb` stanza (one per URI), in order."""
    found = []
    for stanza in parse_deb822(text):
        if "deb" not in stanza.get("types", "").split():
            continue
        if stanza.get("enabled", "yes").lower() == "no":
            continue
        for uri in stanza.get("uris", "").split():
            archive = _debian(uri, stanza.get("suites", "").split(),
                              stanza.get("components", "").split(), stanza.get("signed-by", ""))
            if archive:
                found.append(archive)
    return found


def archives_from_one_line(text: str) -> list[Mirror]:
    """The Debian archives of every `deb [OPTIONS] URI SUITE COMPONENT...` line, in order."""
    found = []
    for raw in text.splitlines():
        line, options = raw.split("#", 1)[0], ""
        if "[" in line:  # the `[arch=... signed-by=...]` options
            if "]" not in line:
                continue
            options = line[line.index("[") + 1:line.index("]")]
            line = line[:line.index("[")] + line[line.index("]") + 1:]
        words = line.split()
        signed_by = " ".join(o for o in options.split() if o.startswith("signed-by="))
        if len(words) >= 4 and words[0] == "deb":
            archive = _debian(words[1], [words[2]], words[3:], signed_by)
            if archive:
                found.append(archive)
    return found


def mirror_from_deb822(text: str) -> Mirror | None:
    """The first enabled Debian archive of deb822 text that is not the security one, or None."""
    return next((a for a in archives_from_deb822(text) if not a.security), None)


def mirror_from_one_line(text: str) -> Mirror | None:
    """The first Debian archive of one-line sources that is not the security one, or None."""
    return next((a for a in archives_from_one_line(text) if not a.security), None)


def security_from_deb822(text: str) -> str | None:
    """The URI of the first enabled security archive of deb822 text, or None."""
    return next((a.uri for a in archives_from_deb822(text) if a.security), None)


def source_files(apt_dir: Path = APT_DIR) -> list[Path]:
    """The files apt reads its sources from, in apt's order: sources.list, then the
    `*.list` and `*.sources` files of sources.list.d by name."""
    files = [apt_dir / "sources.list"]
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        files += sorted((p for p in parts.iterdir() if p.suffix in (".list", ".sources")),
                        key=lambda p: p.name)
    return [f for f in files if f.is_file()]


def host_archives(apt_dir: Path = APT_DIR) -> list[Mirror]:
    """Every Debian archive this machine's apt uses, in apt's order."""
    found: list[Mirror] = []
    for path in source_files(apt_dir):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        found += archives_from_deb822(text) if path.suffix == ".sources" else \
            archives_from_one_line(text)
    return found


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


def host_security_uri(apt_dir: Path = APT_DIR) -> str | None:
    """This machine's security archive URI, or None."""
    return next((a.uri for a in host_archives(apt_dir) if a.security), None)


def node_archives(apt_dir: Path = APT_DIR) -> list[str]:
    """The archive URIs nodes are given (see node_sources): all their apt proxy serves."""
    security = host_security_uri(apt_dir)
    return [host_mirror(apt_dir).uri] + ([security] if security else [])


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


def host_mirror(apt_dir: Path = APT_DIR) -> Mirror:
    """This machine's Debian mirror. Raises LookupError naming the files it read."""
    found = next((a for a in host_archives(apt_dir) if not a.security), None)
    if found is None:
        read = ", ".join(map(str, source_files(apt_dir))) or f"nothing under {apt_dir}"
        raise LookupError(f"no Debian mirror found in this machine's apt sources ({read})")
    return found
