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

__all__ = [
    "AptSettings",
    "Fleet",
    "FleetFileError",
    "KubernetesSettings",
    "Node",
    "NodeSSH",
    "SSHSettings",
    "load_fleet",
]
