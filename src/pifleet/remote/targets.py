"""How to reach each node: fleet settings merged with the node's own SSH overrides."""

from __future__ import annotations

from pifleet.fleet import Fleet, Node
from pifleet.remote.engine import Target
from pifleet.remote.keys import key_paths


def node_port(fleet: Fleet, node: Node) -> int:
    """The node's SSH port."""
    return node.ssh.port or fleet.ssh.port


def node_user(fleet: Fleet, node: Node) -> str:
    """The node's SSH user."""
    return node.ssh.user or fleet.ssh.user


def node_password(fleet: Fleet, node: Node) -> str | None:
    """The first-contact password for the node, if the fleet file gives one."""
    return node.ssh.password or fleet.ssh.password


def key_target(fleet: Fleet, node: Node) -> Target:
    """Reach `node` with the fleet key only (after `trust`)."""
    key = fleet.resolve(node.ssh.private_key) if node.ssh.private_key else key_paths(fleet)[0]
    return Target(name=node.name, address=node.address, port=node_port(fleet, node),
                  user=node_user(fleet, node), key=key,
                  known_hosts=fleet.resolve(fleet.ssh.known_hosts))
