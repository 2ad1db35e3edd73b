"""The address plan: one private /24 per sandbox.

Sandboxes take their /24 from 10.213.0.0/16 (slot N gives 10.213.N.0/24). That block stays
clear of the fleet defaults for pods (10.244.0.0/16) and services (10.96.0.0/12), so a cluster
built on the sandbox never routes its own traffic into a node's address. The bridge is .1, node
number i (0-based) is .(10 + i): a sandbox holds at most 244 nodes.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from pifleet.errors import Failed

SUPERNET = ipaddress.IPv4Network("10.213.0.0/16")
FIRST_NODE_HOST = 10
MAX_NODES = 254 - FIRST_NODE_HOST
SLOTS = range(1, 255)
# Pods and services of the default fleet: a sandbox network must never overlap them.
RESERVED = (ipaddress.IPv4Network("10.244.0.0/16"), ipaddress.IPv4Network("10.96.0.0/12"))
# facts.md section 8: DC:A6:32 is a Raspberry Pi Trading prefix, so nodes look like Pis to
# anything that guesses the hardware from the MAC address.
PI_MAC_PREFIX = "dc:a6:32"


@dataclass(frozen=True)
class Plan:
    """The addresses of one sandbox."""

    slot: int

    def __post_init__(self) -> None:
        if self.slot not in SLOTS:
            raise ValueError(f"slot {self.slot} is outside 1..254")

    @property
    def network(self) -> ipaddress.IPv4Network:
        """The sandbox's /24."""
        return ipaddress.IPv4Network(f"{SUPERNET.network_address + self.slot * 256}/24")

    @property
    def bridge(self) -> ipaddress.IPv4Address:
        """The host's address on the bridge: gateway, apt proxy and package server."""
        return self.network.network_address + 1

    def node(self, index: int) -> ipaddress.IPv4Address:
        """The address of node number `index` (0-based)."""
        if not 0 <= index < MAX_NODES:
            raise ValueError(f"a sandbox holds at most {MAX_NODES} nodes")
        return self.network.network_address + FIRST_NODE_HOST + index

    def mac(self, index: int) -> str:
        """A stable MAC for node `index`, unique on this host for this slot."""
        return f"{PI_MAC_PREFIX}:{self.slot:02x}:{index >> 8:02x}:{index & 0xFF:02x}"


def preferred_slot(ident: str) -> int:
    """The slot a sandbox tries first: spread by its id so parallel `up`s rarely race."""
    return int(hashlib.sha256(ident.encode()).hexdigest(), 16) % len(SLOTS) + SLOTS.start


def choose_slot(ident: str, busy_networks: Iterable[ipaddress.IPv4Network],
                taken_slots: Iterable[int] = ()) -> int:
    """The first free slot from the sandbox's preferred one, wrapping around.

    `busy_networks` are networks already routed on this host (they must not overlap);
    `taken_slots` are slots other sandboxes hold. Raises Failed when none is free.
    """
    busy = list(busy_networks) + list(RESERVED)
    taken = set(taken_slots)
    start = preferred_slot(ident)
    for step in range(len(SLOTS)):
        slot = (start - SLOTS.start + step) % len(SLOTS) + SLOTS.start
        if slot in taken:
            continue
        network = Plan(slot).network
        if any(network.overlaps(other) for other in busy):
            continue
        return slot
    raise Failed(f"no free /24 left in {SUPERNET} for another sandbox")
