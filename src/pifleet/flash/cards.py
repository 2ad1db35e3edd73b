"""Per-card first-boot settings from the command line or the fleet file (`--node`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pifleet.errors import BadInput
from pifleet.flash.bootconfig import FirstBoot, Network, Wifi, make_network

if TYPE_CHECKING:
    from pifleet.fleet import Fleet
from pifleet.fleet.names import suggest_names


@dataclass(frozen=True)
class FleetAddressing:
    """`--static-ip /PREFIX` with `--node`: each card gets its node's address from the fleet."""

    prefix: int
    gateway: str | None = None
    dns: tuple[str, ...] = ()


def static_address(static_ip: str | None, gateway: str | None, dns: list[str]
                   ) -> tuple[Network | None, FleetAddressing | None]:
    """`--static-ip`, `--gateway`, `--dns` checked: one address (ADDR/PREFIX) or a prefix only.

    A prefix alone (`/24`) asks for each `--node`'s fleet address as its static address.
    """
    if (gateway or dns) and not static_ip:
        raise BadInput("--gateway and --dns go with --static-ip")
    if not static_ip:
        return None, None
    if not static_ip.startswith("/"):
        return make_network(static_ip, gateway, dns), None
    prefix = static_ip[1:]
    if not prefix.isdigit() or not 1 <= int(prefix) <= 32:
        raise BadInput(f"--static-ip {static_ip}: a prefix alone is /1 to /32, e.g. /24")
    try:
        for value in [gateway, *dns] if gateway else dns:
            ipaddress.IPv4Address(value)
    except ValueError as exc:
        raise BadInput(f"static address: {exc}") from exc
    return None, FleetAddressing(int(prefix), gateway, tuple(dns))


@dataclass
class Common:
    """Settings shared by every card of one run."""

    user: str | None = None
    password_hash: str | None = field(default=None, repr=False)
    ssh_key_files: list[Path] = field(default_factory=list)
    wifi: Wifi | None = None
    network: Network | None = None
    fleet_addressing: FleetAddressing | None = None
    timezone: str | None = None
    locale: str | None = None
    keyboard: str | None = None

    @property
    def any(self) -> bool:
        """Whether any first-boot setting was asked for."""
        return any([self.user, self.password_hash, self.ssh_key_files, self.wifi,
                    self.network, self.fleet_addressing, self.timezone, self.locale,
                    self.keyboard])


def read_keys(files: list[Path]) -> tuple[str, ...]:
    """Public key lines from files; BadInput for a missing file or a private key."""
    keys: list[str] = []
    for path in files:
        try:
            text = path.expanduser().read_text()
        except OSError as exc:
            raise BadInput(f"{path}: cannot read SSH public key ({exc.strerror})") from exc
        if "PRIVATE KEY" in text:
            raise BadInput(f"{path}: is a private key; give the .pub file")
        lines = [line.strip() for line in text.splitlines()
                 if line.strip() and not line.startswith("#")]
        if not lines:
            raise BadInput(f"{path}: no public key in it")
        keys += lines
    return tuple(keys)


def for_targets(count: int, common: Common, hostnames: list[str], nodes: list[str],
                fleet: Fleet | None, fleet_keys: dict[str, str] | None
                ) -> list[FirstBoot | None]:
    """One FirstBoot per target, in order (None: write the image unchanged).

    With `--node`, hostname and user come from the fleet, plus the node's key from
    `fleet_keys` (by node name: the key `pifleet trust` would install). Several targets
    without names get the next unused ship names. Cards keep DHCP unless static addressing
    was asked for: one `--static-ip ADDR/PREFIX` fits one card only, `--static-ip /PREFIX`
    takes each node's fleet address.
    """
    if nodes and hostnames:
        raise BadInput("give --node or --hostname, not both")
    if common.network is not None and count > 1:
        raise BadInput(f"--static-ip {common.network.address} would give all {count} cards the "
                       f"same address; flash them one at a time, or use --node with "
                       f"--static-ip /{common.network.address.network.prefixlen} to take each "
                       f"node's address from the fleet")
    if common.fleet_addressing is not None and not nodes:
        raise BadInput(f"--static-ip /{common.fleet_addressing.prefix} takes each card's "
                       f"address from the fleet: it needs --node")
    keys = read_keys(common.ssh_key_files)
    if nodes:
        if fleet is None:
            raise BadInput("--node needs a fleet file (--fleet)")
        if len(nodes) != count:
            raise BadInput(f"{count} targets but {len(nodes)} --node names: give one per card")
        out: list[FirstBoot | None] = []
        for name in nodes:
            node = fleet.node(name)
            user = common.user or node.ssh.user or fleet.ssh.user
            key = (fleet_keys or {}).get(name)
            extra = (key,) if key else ()
            out.append(_boot(common, name, user, keys + extra,
                             _node_network(common, name, node.address)))
        return out
    if not hostnames:
        if not common.any:
            return [None] * count
        taken = [n.name for n in fleet.nodes] if fleet else []
        hostnames = suggest_names(count, taken)
    if len(hostnames) != count:
        raise BadInput(f"{count} targets but {len(hostnames)} --hostname values: give one per "
                       f"card")
    if len(set(hostnames)) != len(hostnames):
        raise BadInput("each card needs its own hostname")
    return [_boot(common, h, common.user or "pirate", keys, common.network)
            for h in hostnames]


def _node_network(common: Common, name: str, address: str) -> Network | None:
    """The static address for a fleet node's card, or None to keep DHCP."""
    try:
        fleet_ip: ipaddress.IPv4Address | None = ipaddress.IPv4Address(address)
    except ValueError:
        fleet_ip = None  # a DNS name such as brig.local: DHCP and mDNS find it
    scheme = common.fleet_addressing
    if scheme is not None:
        if fleet_ip is None:
            raise BadInput(f"node {name}: its fleet address {address} is not an IPv4 address, "
                           f"so it cannot be the card's static address")
        return make_network(f"{fleet_ip}/{scheme.prefix}", scheme.gateway, list(scheme.dns))
    network = common.network
    if network is not None and fleet_ip is not None and network.address.ip != fleet_ip:
        raise BadInput(f"--static-ip {network.address}: the fleet reaches node {name} at "
                       f"{fleet_ip}; give that address (or --static-ip /PREFIX)")
    return network


def _boot(common: Common, hostname: str, user: str, keys: tuple[str, ...],
          network: Network | None) -> FirstBoot:
    return FirstBoot(hostname=hostname, user=user, password_hash=common.password_hash,
                     ssh_keys=tuple(dict.fromkeys(keys)), wifi=common.wifi,
                     network=network, timezone=common.timezone, locale=common.locale,
                     keyboard=common.keyboard)
