"""A commented `fleet.yaml`: rendered from a Fleet, read back by `load_fleet` to the same values."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import yaml

from pifleet.fleet.model import Fleet, Node

HEADER = """\
# fleet.yaml: the Raspberry Pis of one Kubernetes cluster. Every pifleet command reads it
# (from ./fleet.yaml, --fleet FILE or $PIFLEET_FLEET). Relative paths are relative to this
# file's folder. Edit freely: pifleet checks it and names file, line and column of any mistake.
"""

NAME = """
# The cluster's name: it names the kubeconfig context and the folder of per-node logs.
"""

NODES = """
# One entry per Pi. `name` is its hostname: lower-case letters, digits and inner hyphens
# (`pifleet names` suggests unused ship names). `address` is how this machine reaches it: an
# IPv4 or IPv6 address or a DNS name such as laperouse.local. Exactly one node has
# `role: control-plane`; the others are `worker`s. Optional per node: `ssh` (user, port,
# private_key, password: overrides of the section below) and `tower` / `team` labels that
# group the Pis of a class.
"""

SSH = """
# How pifleet logs in. `pifleet trust` makes first contact with `user` and `password` (the
# HypriotOS default is pirate / hypriot; `password: null` asks for it), creates the fleet's own
# key at `private_key` and pins every host key in `known_hosts`. After that, only the key is used.
"""

KUBERNETES = """
# The cluster to build. `version` is a minor ("1.34") or a patch release ("1.34.2"); keep it
# quoted. Packages come from `package_repository`, signed by the key at `package_key_url`:
# `{minor}` in them becomes the version's minor, so changing the version moves the repository.
# `pod_cidr` (the pod network, given to flannel) and `service_cidr` must not overlap each other
# or the Pis' own network. `dashboard` is headlamp, kubernetes-dashboard or none. `token_ttl`
# is how long a join token lives; pifleet mints a fresh one just before each join.
"""

APT = """
# Where the Pis get Debian packages: `mirror` replaces the image's mirror, `proxy` is an apt
# proxy such as apt-cacher-ng (e.g. http://192.168.1.2:3142). null keeps the image's own settings.
"""


def _scalar(value: Any) -> str:
    """One YAML scalar, quoted only when YAML would read it as something else."""
    if isinstance(value, Path | ipaddress.IPv4Network | ipaddress.IPv6Network):
        value = str(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True)
    return text.removesuffix("\n...\n").strip()


def _mapping(values: dict[str, Any], indent: str) -> list[str]:
    return [f"{indent}{key}: {_scalar(value)}" for key, value in values.items()]


def _node(node: Node) -> list[str]:
    lines = [f"  - name: {_scalar(node.name)}",
             f"    address: {_scalar(node.address)}",
             f"    role: {_scalar(node.role)}"]
    overrides = node.ssh.model_dump(exclude_none=True)
    if overrides:
        lines += ["    ssh:", *_mapping(overrides, "      ")]
    lines += _mapping({k: v for k, v in (("tower", node.tower), ("team", node.team)) if v},
                      "    ")
    return lines


def render_fleet(fleet: Fleet) -> str:
    """The fleet as a commented fleet.yaml that explains every section."""
    lines = [HEADER + NAME + f"name: {_scalar(fleet.name)}", NODES + "nodes:"]
    for node in fleet.nodes:
        lines += _node(node)
    lines += [SSH + "ssh:", *_mapping(fleet.ssh.model_dump(), "  ")]
    lines += [KUBERNETES + "kubernetes:", *_mapping(fleet.kubernetes.model_dump(), "  ")]
    lines += [APT + "apt:", *_mapping(fleet.apt.model_dump(), "  ")]
    return "\n".join(lines) + "\n"
