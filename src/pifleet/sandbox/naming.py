"""Names of everything a sandbox creates on the host, all derived from its directory.

Two sandboxes in two directories never share a name, and `down` can find what a crashed `up`
left behind from the directory alone, even when the state file is gone. Linux limits link
names to 15 bytes (IFNAMSIZ - 1), which shapes the short forms below.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

# Every host object of every sandbox starts with one of these, so leftovers can be listed.
NETNS_PREFIX = "pifleet-"
BRIDGE_PREFIX = "pfb-"
VETH_PREFIX = "pfv"
RULE_TAG_PREFIX = "pifleet-sandbox-"
IFNAMSIZ = 15


def sandbox_id(directory: Path) -> str:
    """Six hex digits that stand for the sandbox directory (its absolute path)."""
    path = str(Path(directory).absolute())
    return hashlib.sha256(path.encode()).hexdigest()[:6]


@dataclass(frozen=True)
class Names:
    """The host-side names of one sandbox."""

    ident: str

    @classmethod
    def for_dir(cls, directory: Path) -> Names:
        """The names of the sandbox that lives in `directory`."""
        return cls(sandbox_id(directory))

    @property
    def bridge(self) -> str:
        """The sandbox's bridge, e.g. `pfb-1a2b3c`."""
        return f"{BRIDGE_PREFIX}{self.ident}"

    @property
    def netns_prefix(self) -> str:
        """What every network namespace of this sandbox starts with."""
        return f"{NETNS_PREFIX}{self.ident}-"

    def netns(self, index: int) -> str:
        """The network namespace of node number `index` (0-based), e.g. `pifleet-1a2b3c-00`."""
        return f"{self.netns_prefix}{index:02d}"

    @property
    def veth_prefix(self) -> str:
        """What every host-side veth end of this sandbox starts with."""
        return f"{VETH_PREFIX}{self.ident}n"

    def veth_host(self, index: int) -> str:
        """The host end of node `index`'s veth pair (joins the bridge)."""
        return f"{self.veth_prefix}{index}"

    def veth_peer(self, index: int) -> str:
        """The node end before it moves into the namespace and becomes eth0."""
        return f"{VETH_PREFIX}{self.ident}p{index}"

    @property
    def rule_tag(self) -> str:
        """The iptables comment that marks this sandbox's own rules."""
        return f"{RULE_TAG_PREFIX}{self.ident}"


def check_link_name(name: str) -> str:
    """Return `name` if the kernel accepts it as a link name, else raise ValueError."""
    if not name or len(name.encode()) > IFNAMSIZ or "/" in name or " " in name:
        raise ValueError(f"not a valid link name: {name!r}")
    return name
