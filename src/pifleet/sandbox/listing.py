"""`sandbox list`: the sandboxes this machine knows of, and what state they are in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pifleet.sandbox import hostcheck, hostservices, network, registry, strays
from pifleet.sandbox.addresses import Plan
from pifleet.sandbox.naming import Names
from pifleet.sandbox.runtime import supervisor_pid
from pifleet.sandbox.state import load


@dataclass(frozen=True)
class Listing:
    """One sandbox on this machine, as `sandbox list` shows it."""

    ident: str
    directory: Path | None
    bridge: str
    network: str | None
    nodes: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        """running, partial, stopped or stale."""
        if self.problems:
            return "stale"
        if self.nodes and len(self.running) == len(self.nodes):
            return "running"
        return "partial" if self.running else "stopped"


def list_sandboxes() -> list[Listing]:
    """Every sandbox this machine knows of: registered ones, and bridges left by others."""
    hostcheck.ensure_sbin_on_path()
    bridges = set(network.sandbox_bridges())
    found: list[Listing] = []
    seen = set()
    for entry in registry.entries():
        seen.add(entry.ident)
        directory = Path(entry.directory)
        names = Names(entry.ident)
        record = load(directory)
        problems = []
        if record is None:
            problems.append(f"no state in {directory}")
        if names.bridge not in bridges:
            problems.append("bridge missing")
        problems += network.rule_problems(names, Plan(entry.slot))
        node_names = record.nodes if record else []
        running = [n for n in node_names if supervisor_pid(directory, n)]
        if running and not hostservices.apt_proxy_pids(entry.ident):
            problems.append("apt proxy not running")
        found.append(Listing(entry.ident, directory, names.bridge, str(Plan(entry.slot).network),
                             list(node_names), running, problems))
    for ident, left in strays.problems(seen).items():
        found.append(Listing(ident, None, Names(ident).bridge, None, [], [], left))
    return found
