"""The fleet file (`fleet.yaml`): model, loading with positioned errors, hostnames, template.

The names below are loaded on first use: the model needs pydantic, which commands that never
read a fleet file (`flash` without `--node`, `names`) should not wait for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pifleet.fleet.load import load_fleet
    from pifleet.fleet.model import (
        AptSettings,
        Fleet,
        FleetFileError,
        KubernetesSettings,
        Node,
        NodeSSH,
        SSHSettings,
    )
    from pifleet.fleet.names import SHIP_NAMES, is_hostname_label, suggest_names

_WHERE = {
    "load_fleet": "load",
    "AptSettings": "model",
    "Fleet": "model",
    "FleetFileError": "model",
    "KubernetesSettings": "model",
    "Node": "model",
    "NodeSSH": "model",
    "SSHSettings": "model",
    "SHIP_NAMES": "names",
    "is_hostname_label": "names",
    "suggest_names": "names",
}

__all__ = [
    "SHIP_NAMES",
    "AptSettings",
    "Fleet",
    "FleetFileError",
    "KubernetesSettings",
    "Node",
    "NodeSSH",
    "SSHSettings",
    "is_hostname_label",
    "load_fleet",
    "suggest_names",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
