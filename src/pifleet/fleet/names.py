"""Hostnames for Raspberry Pis, in the practical's sailing-ship theme.

The names are famous sailing ships, explorers' ships and kinds of sailing ship. Every one is a
valid RFC 1123 label (lower case letters, digits and inner hyphens, at most 63 characters), so it
can be used as a hostname and as a Kubernetes node name as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pifleet.errors import BadInput

# One label of a hostname (RFC 1123 section 2.1), lower case only: Kubernetes node names must be.
HOSTNAME_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

# The practical's own names come first, so a new fleet looks like the one in the course.
SHIP_NAMES: tuple[str, ...] = (
    # The practical
    "laperouse", "black-pearl", "fregate",
    # Explorers' ships
    "astrolabe", "boussole", "endeavour", "resolution", "discovery", "adventure", "beagle",
    "bounty", "victoria", "trinidad", "santa-maria", "pinta", "nina", "golden-hind",
    "mayflower", "half-moon", "erebus", "terror", "fram", "endurance", "belgica", "gjoa",
    "pourquoi-pas", "recherche", "esperance", "geographe", "naturaliste", "uranie", "coquille",
    "zelee", "boudeuse", "etoile", "investigator", "duyfken", "heemskerck", "zeehaen",
    "concepcion", "san-antonio", "sao-gabriel", "berrio", "roebuck", "dolphin", "swallow",
    "vega", "jeannette", "nimrod", "aurora", "terra-nova", "gauss", "challenger", "vostok",
    "mirny", "nadezhda", "neva",
    # Famous ships, real and from books
    "victory", "cutty-sark", "thermopylae", "constitution", "bluenose", "vasa", "mary-rose",
    "flying-cloud", "flying-dutchman", "queen-annes-revenge", "whydah", "hispaniola", "pequod",
    "belem", "hermione", "amerigo-vespucci", "gorch-fock", "kruzenshtern", "sedov",
    "libertad", "esmeralda", "dar-pomorza", "christian-radich", "sagres", "mircea", "preussen",
    "pamir", "passat", "peking", "moshulu", "great-republic", "sovereign-of-the-seas",
    "batavia", "amsterdam", "surprise", "bellerophon", "temeraire", "vengeur", "redoutable",
    "ghost", "sea-witch", "marie-galante",
    # Kinds of sailing ship
    "frigate", "brigantine", "brig", "schooner", "ketch", "yawl", "sloop", "cutter", "caravel",
    "carrack", "galleon", "clipper", "barque", "barquentine", "corvette", "xebec", "felucca",
    "dhow", "junk", "lugger", "pinnace", "galiot", "tartane", "polacca", "bugeye", "skipjack",
    "cog", "knarr", "longship", "drakkar", "galleass", "fluyt", "bilander", "catboat", "proa",
    "windjammer", "man-of-war", "east-indiaman", "tall-ship", "trabaccolo", "chebec", "dogger",
)


def is_hostname_label(name: str) -> bool:
    """True when `name` is a lower-case RFC 1123 label, usable as a hostname and a node name."""
    return HOSTNAME_LABEL.fullmatch(name) is not None


def suggest_names(count: int, taken: Iterable[str] = ()) -> list[str]:
    """The first `count` ship names that are not in `taken` (compared without case).

    Raises BadInput when `count` is negative or the built-in list has fewer unused names.
    """
    if count < 0:
        raise BadInput(f"cannot suggest {count} names: give a number of 0 or more")
    used = {name.lower() for name in taken}
    free = [name for name in SHIP_NAMES if name not in used]
    if count > len(free):
        raise BadInput(f"only {len(free)} unused ship names are left of {len(SHIP_NAMES)}, "
                       f"{count} were asked for: ask for {len(free)} or fewer, or name the "
                       "other nodes yourself")
    return free[:count]
