"""Host rules and apt proxies of sandboxes this machine no longer has (after a crash, or a
folder deleted without `down`): found by their tags and names, removed by the next `up` or
`down` of any sandbox, and named by `list`.

A sandbox still exists while it is registered or its bridge is there; only what belongs to
neither is touched, so sandboxes run with another registry folder are left alone.
"""

from __future__ import annotations

from pifleet.events import Emitter, Status
from pifleet.sandbox import hostservices, network, registry
from pifleet.sandbox.naming import BRIDGE_PREFIX, Names
from pifleet.sandbox.runtime import PHASE


def _bridge_idents() -> set[str]:
    return {bridge[len(BRIDGE_PREFIX):] for bridge in network.sandbox_bridges()}


def problems(registered: set[str]) -> dict[str, list[str]]:
    """Sandbox id -> what this machine still holds of it, for every id not in `registered`."""
    found: dict[str, list[str]] = {}
    for what, idents in (("bridge", _bridge_idents()), ("rules", network.rule_idents()),
                         ("apt proxy", hostservices.apt_proxy_idents())):
        for ident in sorted(idents - registered):
            found.setdefault(ident, []).append(f"{what} without a registered sandbox")
    return found


def remove(emit: Emitter) -> None:
    """Remove the rules and stop the apt proxies of sandboxes that are gone (machine lock
    held)."""
    known = {entry.ident for entry in registry.entries()} | _bridge_idents()
    for ident in sorted(network.rule_idents() - known):
        count = network.remove_rules(Names(ident))
        emit.emit(None, PHASE, "leftovers", Status.INFO, changed=True,
                  message=f"removed {count} iptables rules of the vanished sandbox {ident}")
    for ident in sorted(hostservices.apt_proxy_idents() - known):
        hostservices.stop_apt_proxy(ident)
        emit.emit(None, PHASE, "leftovers", Status.INFO, changed=True,
                  message=f"stopped the apt proxy of the vanished sandbox {ident}")
