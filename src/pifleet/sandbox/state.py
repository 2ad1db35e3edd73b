"""A sandbox's own record (DIR/.sandbox/state.json) and the information `up` hands back.

The record is written before anything is started, so `down` can undo a crashed `up`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pifleet.sandbox.addresses import Plan
from pifleet.sandbox.hostservices import APT_PROXY_PORT, PACKAGES_PORT
from pifleet.sandbox.naming import Names
from pifleet.sandbox.nodefiles import PASSWORD, USER

STATE_DIR = ".sandbox"
FLEET_FILE = "fleet.yaml"
PACKAGES_DIR = "packages"


@dataclass(frozen=True)
class SandboxNode:
    """One virtual Pi."""

    name: str
    index: int
    address: str
    role: str
    netns: str
    mac: str


@dataclass(frozen=True)
class Sandbox:
    """What a running sandbox offers: where it lives and how to reach its nodes."""

    directory: Path
    ident: str
    arch: str
    bridge: str
    bridge_address: str
    network: str
    nodes: tuple[SandboxNode, ...]
    fleet_path: Path
    packages_dir: Path
    packages_url: str
    apt_proxy_url: str
    ssh_user: str = USER
    ssh_password: str = PASSWORD

    @property
    def node_names(self) -> list[str]:
        """Node names in fleet order (control plane first)."""
        return [n.name for n in self.nodes]

    def node(self, name: str) -> SandboxNode:
        """The node called `name` (KeyError if none)."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)


@dataclass
class Record:
    """The persistent state of one sandbox."""

    directory: str
    ident: str
    slot: int
    arch: str
    base: str
    nodes: list[str] = field(default_factory=list)
    created_dir: bool = False

    @property
    def names(self) -> Names:
        """Host-side names of this sandbox."""
        return Names(self.ident)

    @property
    def plan(self) -> Plan:
        """Addresses of this sandbox."""
        return Plan(self.slot)

    def info(self) -> Sandbox:
        """The `Sandbox` this record describes."""
        directory = Path(self.directory)
        plan, names = self.plan, self.names
        nodes = tuple(
            SandboxNode(name=name, index=i, address=str(plan.node(i)),
                        role="control-plane" if i == 0 else "worker",
                        netns=names.netns(i), mac=plan.mac(i))
            for i, name in enumerate(self.nodes))
        return Sandbox(
            directory=directory, ident=self.ident, arch=self.arch, bridge=names.bridge,
            bridge_address=str(plan.bridge), network=str(plan.network), nodes=nodes,
            fleet_path=directory / FLEET_FILE, packages_dir=directory / PACKAGES_DIR,
            packages_url=f"http://{plan.bridge}:{PACKAGES_PORT}",
            apt_proxy_url=f"http://{plan.bridge}:{APT_PROXY_PORT}")


def state_dir(directory: Path) -> Path:
    """DIR/.sandbox: the sandbox's runtime folder."""
    return directory / STATE_DIR


def node_dir(directory: Path, name: str) -> Path:
    """The folder of one node (its layers, run config, logs)."""
    return state_dir(directory) / "nodes" / name


def load(directory: Path) -> Record | None:
    """The record of the sandbox in `directory`, or None if there is none (or unreadable)."""
    try:
        return Record(**json.loads((state_dir(directory) / "state.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def save(record: Record) -> None:
    """Write the record atomically."""
    path = state_dir(Path(record.directory)) / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record), indent=1) + "\n")
    os.replace(tmp, path)
