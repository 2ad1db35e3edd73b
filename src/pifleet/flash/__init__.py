"""Writing OS images to SD cards with first-boot configuration.

`plan` checks an image and its targets without changing anything; `execute` writes them.
`list_disks` lists the disks `pifleet devices` shows.
"""

from pifleet.flash.bootconfig import FirstBoot, hash_password, make_network, make_wifi
from pifleet.flash.cards import Common, for_targets, static_address
from pifleet.flash.catalog import CATALOG
from pifleet.flash.devices import Disk, human_size, list_disks
from pifleet.flash.run import CardResult, Plan, Request, execute, plan
from pifleet.flash.targets import Policy

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
