"""What a card should be on first boot, independent of the format that carries it."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field

from pifleet.errors import BadInput

HOSTNAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
USERNAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
# Timezone, locale and keyboard reach a path, an echo and sed commands in firstrun.sh: each
# may hold only what its kind of name needs, so none can carry a quote, a space, `&`, `\` or
# (outside a time zone's path) the `/` that sed uses as its delimiter.
SETTING_VALUES = {
    # Europe/Berlin, America/Argentina/Buenos_Aires, Etc/GMT+5, UTC: no `.`, so no `..`.
    "--timezone": re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$"),
    # en_GB.UTF-8, C.UTF-8, sr_RS@latin
    "--locale": re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9-]+)?(@[A-Za-z0-9]+)?$"),
    # de, us, gb, or several: us,de
    "--keyboard": re.compile(r"^[A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*$"),
}


def check_setting(option: str, value: str) -> str:
    """`value` if it is a well-formed name for `option`, else BadInput naming the option.

    The one check for timezone, locale and keyboard: what passes is safe in a path, in a
    shell word and in a sed command, so the formats need no check of their own.
    """
    if not SETTING_VALUES[option].fullmatch(value) or len(value) > 100:
        raise BadInput(f"{option} {value!r}: not a valid name (e.g. Europe/Berlin, "
                       f"en_GB.UTF-8, de)")
    return value


@dataclass(frozen=True)
class Network:
    """A static IPv4 address for eth0 (Wi-Fi, when set, stays on DHCP)."""

    address: ipaddress.IPv4Interface
    gateway: ipaddress.IPv4Address | None = None
    dns: tuple[ipaddress.IPv4Address, ...] = ()


@dataclass(frozen=True)
class Wifi:
    """A Wi-Fi network. `psk` is the 64-hex-digit key derived from the passphrase.

    `passphrase` is kept only for the old HypriotOS formats, whose readers derive the key
    themselves. Neither secret shows in a repr (logs, tracebacks).
    """

    ssid: str
    psk: str = field(repr=False)
    country: str
    passphrase: str = field(default="", repr=False)


@dataclass(frozen=True)
class FirstBoot:
    """Everything the first boot should set up. `password_hash` is a crypt(3) SHA-512 hash."""

    hostname: str
    user: str = "pirate"
    password_hash: str | None = field(default=None, repr=False)
    ssh_keys: tuple[str, ...] = ()
    wifi: Wifi | None = None
    network: Network | None = None
    timezone: str | None = None
    locale: str | None = None
    keyboard: str | None = None
    instance_id: str = field(default_factory=lambda: f"pifleet-{uuid.uuid4()}")

    def __post_init__(self) -> None:
        if not HOSTNAME.match(self.hostname):
            raise BadInput(f"hostname {self.hostname!r}: use 1-63 lower-case letters, digits "
                           f"or '-', not at either end")
        if not USERNAME.match(self.user):
            raise BadInput(f"user {self.user!r}: not a valid Linux user name")
        for key in self.ssh_keys:
            if not re.match(r"^(ssh-|ecdsa-|sk-)\S+ \S+", key):
                raise BadInput(f"{key[:30]!r}...: not an SSH public key line")
        # Checked here, before anything is written: these end up in paths and sed commands.
        for option, value in (("--timezone", self.timezone), ("--locale", self.locale),
                              ("--keyboard", self.keyboard)):
            if value is not None:
                check_setting(option, value)


def wifi_psk(ssid: str, passphrase: str) -> str:
    """The WPA2 pre-shared key: PBKDF2-HMAC-SHA1, salt = SSID, 4096 rounds, 32 bytes.

    The passphrase itself then never lands on the card.
    """
    if re.fullmatch(r"[0-9a-fA-F]{64}", passphrase):
        return passphrase.lower()
    if not 8 <= len(passphrase) <= 63:
        raise BadInput("Wi-Fi passphrase must be 8 to 63 characters (or a 64-hex-digit key)")
    if not all(" " <= c <= "~" for c in passphrase):
        # IEEE 802.11i: printable ASCII; this also keeps line breaks out of the key=value and
        # YAML files the old HypriotOS formats store it in.
        raise BadInput("Wi-Fi passphrase: use printable ASCII characters only")
    if not 1 <= len(ssid.encode()) <= 32:
        raise BadInput("Wi-Fi SSID must be 1 to 32 bytes")
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32).hex()


def make_wifi(ssid: str, passphrase: str, country: str) -> Wifi:
    """A checked Wi-Fi setting (country is the two-letter regulatory domain)."""
    country = country.upper()
    if not COUNTRY.match(country):
        raise BadInput(f"Wi-Fi country {country!r}: use a two-letter code such as DE or US")
    return Wifi(ssid, wifi_psk(ssid, passphrase), country, passphrase)


def make_network(address: str, gateway: str | None, dns: list[str]) -> Network:
    """A checked static address (`ADDR/PREFIX`)."""
    try:
        interface = ipaddress.IPv4Interface(address)
        if "/" not in address:
            raise ValueError("give the prefix length, e.g. 192.168.1.20/24")
        gw = ipaddress.IPv4Address(gateway) if gateway else None
        servers = tuple(ipaddress.IPv4Address(d) for d in dns)
    except ValueError as exc:
        raise BadInput(f"static address: {exc}") from exc
    if gw is not None and gw not in interface.network:
        raise BadInput(f"gateway {gw} is not in {interface.network}")
    return Network(interface, gw, servers)


def hash_password(password: str) -> str:
    """A SHA-512 crypt(3) hash, made by `openssl passwd -6` with the password on stdin.

    The password never appears on a command line (visible in `ps`).
    """
    if not password:
        raise BadInput("empty password")
    if shutil.which("openssl") is None:
        raise BadInput("hashing a password needs the openssl command")
    proc = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode(),
                          capture_output=True, check=False)
    hashed = proc.stdout.decode().strip()
    if proc.returncode != 0 or not hashed.startswith("$6$"):
        raise BadInput("openssl could not hash the password")
    return hashed
