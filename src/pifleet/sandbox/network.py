"""The sandbox's network on the host: a bridge, one namespace + veth pair per node, and
iptables rules that keep every sandbox packet on this machine and away from its services.

Nodes get a default route via the bridge (kubeadm and real Pis expect one), but the host drops
whatever would be forwarded from the bridge to any other interface (and back): FORWARD rules.
What a node sends to this machine itself (any of its addresses: the bridge's, other bridges',
its main interface's, loopback-bound services through them) goes through INPUT, where each
sandbox's rules accept only new connections to its own bridge address on its own services'
ports, and replies to connections this machine opened (SSH to nodes, the API server); the rest
is dropped. So a node reaches its sandbox neighbours, its apt proxy and its package server.
Every rule carries the sandbox's tag (an iptables comment), so `down`, a later `up` and
`list` find them even after a crash.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from pifleet.sandbox.addresses import Plan
from pifleet.sandbox.commands import run, succeeds
from pifleet.sandbox.hostservices import SERVICE_PORTS
from pifleet.sandbox.naming import BRIDGE_PREFIX, RULE_TAG_PREFIX, Names

NETNS_DIR = Path("/run/netns")
RULE_CHAINS = ("FORWARD", "INPUT")


def links() -> list[dict[str, object]]:
    """Every link on the host (`ip -j link`)."""
    return list(json.loads(run(["ip", "-j", "link", "show"]).stdout or "[]"))


def link_names() -> set[str]:
    """The names of every link on the host."""
    return {str(link["ifname"]) for link in links()}


def netns_names() -> list[str]:
    """Every named network namespace (`ip netns list`)."""
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def routed_networks() -> list[str]:
    """Destinations of the host's IPv4 routes (to keep a new sandbox clear of them)."""
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]")
    return [str(r["dst"]) for r in routes if r.get("dst") not in (None, "default")
            and "/" in str(r.get("dst")) and not str(r["dst"]).startswith("127.")]


def sandbox_bridges() -> list[str]:
    """Bridges on the host named like a sandbox's."""
    return sorted(n for n in link_names() if n.startswith(BRIDGE_PREFIX))


def ensure_bridge(names: Names, plan: Plan) -> bool:
    """Create the bridge with the host's address on it, IPv6 off. True if it changed."""
    changed = False
    if names.bridge not in link_names():
        run(["ip", "link", "add", names.bridge, "type", "bridge"])
        changed = True
    # No IPv6 on the bridge: the host then neither answers nor routes nodes' IPv6.
    Path(f"/proc/sys/net/ipv6/conf/{names.bridge}/disable_ipv6").write_text("1\n")
    # And the host never routes what arrives on the bridge, even if someone flushes the
    # FORWARD rules: nodes talk to each other (switched) and to the host, nothing further.
    Path(f"/proc/sys/net/ipv4/conf/{names.bridge}/forwarding").write_text("0\n")
    address = f"{plan.bridge}/{plan.network.prefixlen}"
    current = run(["ip", "-o", "-4", "addr", "show", "dev", names.bridge]).stdout
    if f" {address} " not in current:
        run(["ip", "addr", "replace", address, "dev", names.bridge])
        changed = True
    run(["ip", "link", "set", names.bridge, "up"])
    return changed


def remove_bridge(names: Names) -> bool:
    """Delete the bridge if present. True if it was there."""
    if names.bridge in link_names():
        run(["ip", "link", "del", names.bridge])
        return True
    return False


def node_netns_ready(names: Names, index: int) -> bool:
    """True when node `index`'s namespace exists with its eth0."""
    netns = names.netns(index)
    return (NETNS_DIR / netns).exists() and succeeds(
        ["ip", "-n", netns, "link", "show", "eth0"])


def ensure_node_network(names: Names, plan: Plan, index: int) -> bool:
    """Namespace, veth pair into the bridge, eth0 with the node's address and default route.

    Rebuilds from scratch if a previous attempt left only some of it. True if it changed.
    """
    netns = names.netns(index)
    host_end, peer = names.veth_host(index), names.veth_peer(index)
    if node_netns_ready(names, index) and host_end in link_names():
        return False
    remove_node_network(names, index)
    run(["ip", "netns", "add", netns])
    run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", peer])
    run(["ip", "link", "set", host_end, "master", names.bridge, "up"])
    run(["ip", "link", "set", peer, "netns", netns])
    inside = ["ip", "-n", netns]
    run([*inside, "link", "set", peer, "name", "eth0", "address", plan.mac(index)])
    run([*inside, "addr", "add", f"{plan.node(index)}/{plan.network.prefixlen}", "dev", "eth0"])
    run([*inside, "link", "set", "lo", "up"])
    run([*inside, "link", "set", "eth0", "up"])
    run([*inside, "route", "add", "default", "via", str(plan.bridge)])
    return True


def netns_pids(netns: str) -> list[int]:
    """Processes living in a named network namespace (a node's, after its nspawn died)."""
    if not (NETNS_DIR / netns).exists():
        return []
    out = run(["ip", "netns", "pids", netns], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def remove_node_network(names: Names, index: int) -> bool:
    """Delete node `index`'s namespace and veth (whatever of them exists). True if any did."""
    changed = False
    netns = names.netns(index)
    present = link_names()
    for link in (names.veth_host(index), names.veth_peer(index)):
        if link in present:
            run(["ip", "link", "del", link], check=False)
            changed = True
    if netns in netns_names() or (NETNS_DIR / netns).exists():
        run(["ip", "netns", "del", netns])
        changed = True
    return changed


def stray_links(names: Names) -> list[str]:
    """Veth ends of this sandbox still on the host."""
    return sorted(n for n in link_names()
                  if n.startswith(names.veth_prefix) or n.startswith(f"pfv{names.ident}p"))


def stray_netns(names: Names) -> list[str]:
    """Network namespaces of this sandbox (by name prefix)."""
    return sorted(n for n in netns_names() if n.startswith(names.netns_prefix))


def forward_rules(names: Names) -> list[list[str]]:
    """The FORWARD rules (as `iptables` arguments after the chain) of one sandbox, in order."""
    tag = ["-m", "comment", "--comment", names.rule_tag, "-j", "DROP"]
    return [["-i", names.bridge, "!", "-o", names.bridge, *tag],
            ["-o", names.bridge, "!", "-i", names.bridge, *tag]]


def input_rules(names: Names, plan: Plan) -> list[list[str]]:
    """The INPUT rules of one sandbox, in order: replies, its own services, nothing else."""
    tag = ["-m", "comment", "--comment", names.rule_tag]
    ports = ",".join(str(p) for p in SERVICE_PORTS)
    return [["-i", names.bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
             *tag, "-j", "ACCEPT"],
            ["-i", names.bridge, "-d", f"{plan.bridge}/32", "-p", "tcp", "-m", "multiport",
             "--dports", ports, *tag, "-j", "ACCEPT"],
            ["-i", names.bridge, *tag, "-j", "DROP"]]


def sandbox_rules(names: Names, plan: Plan) -> dict[str, list[list[str]]]:
    """Chain -> the rules one sandbox needs there."""
    return {"FORWARD": forward_rules(names), "INPUT": input_rules(names, plan)}


def tagged_rules(listing: str, tag: str, chain: str = "FORWARD") -> list[list[str]]:
    """The `-A CHAIN ...` lines of `iptables -S CHAIN` carrying `tag`, as argument lists."""
    found = []
    for line in listing.splitlines():
        words = shlex.split(line)
        if words[:2] == ["-A", chain] and tag in words:
            found.append(words[2:])
    return found


def rules_listing(chain: str) -> str:
    """`iptables -S CHAIN`."""
    return run(["iptables", "-w", "-S", chain]).stdout


def rules_readable() -> bool:
    """Only root can read iptables rules (`sandbox list` also runs as a user)."""
    return os.geteuid() == 0


def _in_place(chain: str, names: Names, rules: list[list[str]]) -> bool:
    """True when exactly `rules` carry the sandbox's tag in `chain`, in this order."""
    present = tagged_rules(rules_listing(chain), names.rule_tag, chain)
    if len(present) != len(rules):
        return False
    # iptables prints rules in its own normal form: let it compare (`-C`), then check order.
    if not all(succeeds(["iptables", "-w", "-C", chain, *rule]) for rule in rules):
        return False
    return all(p[-1] == r[-1] for p, r in zip(present, rules, strict=True))


def ensure_rules(names: Names, plan: Plan) -> bool:
    """Put the sandbox's FORWARD and INPUT rules at the top of their chains, replacing any
    partial or outdated set. True if anything changed."""
    changed = False
    for chain, rules in sandbox_rules(names, plan).items():
        if _in_place(chain, names, rules):
            continue
        _remove(chain, names.rule_tag)
        for rule in reversed(rules):
            run(["iptables", "-w", "-I", chain, "1", *rule])
        changed = True
    return changed


def _remove(chain: str, tag: str) -> int:
    present = tagged_rules(rules_listing(chain), tag, chain)
    for rule in present:
        run(["iptables", "-w", "-D", chain, *rule], check=False)
    return len(present)


def remove_rules(names: Names) -> int:
    """Delete every rule tagged for this sandbox, in every chain it uses. Returns how many."""
    return sum(_remove(chain, names.rule_tag) for chain in RULE_CHAINS)


def rule_problems(names: Names, plan: Plan) -> list[str]:
    """What is wrong with a sandbox's rules ([] when all are in place, or unreadable)."""
    if not rules_readable():
        return []
    return [f"{chain} rules missing or changed"
            for chain, rules in sandbox_rules(names, plan).items()
            if not _in_place(chain, names, rules)]


def rule_idents() -> set[str]:
    """Sandboxes that have tagged rules on this machine (none known when unreadable)."""
    found: set[str] = set()
    if not rules_readable():
        return found
    for chain in RULE_CHAINS:
        for line in rules_listing(chain).splitlines():
            words = shlex.split(line)
            for word in words:
                if word.startswith(RULE_TAG_PREFIX):
                    found.add(word[len(RULE_TAG_PREFIX):])
    return found
