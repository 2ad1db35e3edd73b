"""Per-card first-boot settings from the command line or the fleet file (`--node`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pifleet.errors import BadInput
from pifleet.flash.bootconfig import FirstBoot, Network, Wifi

if TYPE_CHECKING:
    from pifleet.fleet import Fleet
from pifleet.fleet.names import suggest_names


@dataclass
class Common:
    """Settings shared by every card of one run."""

    user: str | None = None
    password_hash: str | None = field(default=None, repr=False)
    ssh_key_files: list[Path] = field(default_factory=list)
    wifi: Wifi | None = None
    network: Network | None = None
    timezone: str | None = None
    locale: str | None = None
    keyboard: str | None = None

    @property
    def any(self) -> bool:
        """Whether any first-boot setting was asked for."""
        return any([self.user, self.password_hash, self.ssh_key_files, self.wifi,
                    self.network, self.timezone, self.locale, self.keyboard])


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
    without names get the next unused ship names.
    """
    if nodes and hostnames:
        raise BadInput("give --node or --hostname, not both")
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
            out.append(_boot(common, name, user, keys + extra))
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
    return [_boot(common, h, common.user or "pirate", keys) for h in hostnames]


def _boot(common: Common, hostname: str, user: str, keys: tuple[str, ...]) -> FirstBoot:
    return FirstBoot(hostname=hostname, user=user, password_hash=common.password_hash,
                     ssh_keys=tuple(dict.fromkeys(keys)), wifi=common.wifi,
                     network=common.network, timezone=common.timezone, locale=common.locale,
                     keyboard=common.keyboard)
