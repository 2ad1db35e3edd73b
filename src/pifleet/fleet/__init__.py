"""The fleet file (`fleet.yaml`): model, loading with positioned errors, hostnames, template."""

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
