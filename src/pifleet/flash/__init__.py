"""Writing OS images to SD cards with first-boot configuration.

`plan` checks an image and its targets without changing anything; `execute` writes them.
`list_disks` lists the disks `pifleet devices` shows.

The names below are loaded on first use, so `pifleet flash` does not pay at start-up for
modules it does not need on this run (the device listing, the catalog).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pifleet.flash.bootconfig import FirstBoot, hash_password, make_network, make_wifi
    from pifleet.flash.cards import Common, for_targets, static_address
    from pifleet.flash.catalog import CATALOG
    from pifleet.flash.devices import Disk, human_size, list_disks
    from pifleet.flash.run import CardResult, Plan, Request, execute, plan
    from pifleet.flash.targets import Policy

_WHERE = {
    "FirstBoot": "bootconfig", "hash_password": "bootconfig", "make_network": "bootconfig",
    "make_wifi": "bootconfig", "Common": "cards", "for_targets": "cards",
    "static_address": "cards", "CATALOG": "catalog",
    "Disk": "devices", "human_size": "devices", "list_disks": "devices",
    "CardResult": "run", "Plan": "run", "Request": "run", "execute": "run", "plan": "run",
    "Policy": "targets",
}

__all__ = [
    "CATALOG",
    "CardResult",
    "Common",
    "Disk",
    "FirstBoot",
    "Plan",
    "Policy",
    "Request",
    "execute",
    "for_targets",
    "hash_password",
    "human_size",
    "list_disks",
    "make_network",
    "make_wifi",
    "plan",
    "static_address",
]


def __getattr__(name: str) -> Any:
    """Import the module that defines `name` on first use (PEP 562)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
