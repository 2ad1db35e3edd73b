"""Checks that compare several values of a fleet file.

They read the plain data (not the model), so they still run, and their problems are still
reported, when some other value in the file is wrong.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pifleet.fleet.model import KubernetesSettings
from pifleet.fleet.names import is_hostname_label, suggest_names

Loc = tuple[str | int, ...]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Private networks offered when the pod or service network collides with something.
_SPARE_NETWORKS = {
    "pod_cidr": ("10.244.0.0/16", "10.42.0.0/16", "10.128.0.0/16", "172.20.0.0/16"),
    "service_cidr": ("10.96.0.0/12", "10.112.0.0/12", "172.30.0.0/16", "192.168.240.0/20"),
}


@dataclass(frozen=True)
class Finding:
    """A problem at `loc`; `at_key` places it on the key rather than on the value."""

    loc: Loc
    message: str
    at_key: bool = False


def check_fleet_data(data: dict[str, Any]) -> list[Finding]:
    """Every cross-field problem of a fleet file's data (values of the wrong type are skipped)."""
    nodes = data.get("nodes")
    nodes = [(i, n) for i, n in enumerate(nodes) if isinstance(n, dict)] \
        if isinstance(nodes, list) else []
    kubernetes = data.get("kubernetes")
    kubernetes = kubernetes if isinstance(kubernetes, dict) else {}
    found: list[Finding] = []
    if isinstance(data.get("nodes"), list) and not data["nodes"]:
        found.append(Finding(("nodes",), "`nodes` is empty: add at least one node, e.g. "
                             "`- {name: laperouse, address: 192.168.1.10, role: control-plane}`"))
    found += _duplicates(nodes, "name")
    found += _duplicates(nodes, "address")
    found += _control_plane(nodes)
    found += _networks(nodes, kubernetes)
    return found


def _text(node: dict[str, Any], key: str) -> str | None:
    value = node.get(key)
    return value if isinstance(value, str) else None


def _same_address(address: str) -> str:
    """A form in which two spellings of one address compare equal."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address.lower().rstrip(".")


def _duplicates(nodes: list[tuple[int, dict[str, Any]]], key: str) -> Iterator[Finding]:
    first: dict[str, int] = {}
    names = [n for _, node in nodes if (n := _text(node, "name"))]
    for i, node in nodes:
        value = _text(node, key)
        if value is None:
            continue
        same = _same_address(value) if key == "address" else value
        if same not in first:
            first[same] = i
            continue
        if key == "name":
            spare = suggest_names(1, names)[0] if len(names) < 100 else "another name"
            advice = f"give each node its own name, e.g. `{spare}`"
        else:
            advice = "give each node its own address"
        yield Finding(("nodes", i, key), f"{key} `{value}` is already used by nodes[{first[same]}]"
                      f": {advice}")


def _label(node: dict[str, Any], index: int) -> str:
    """The node's name where it is a valid one, else `nodes[i]`: advice never repeats a name
    that is itself wrong (`under Black_Pearl`)."""
    name = _text(node, "name")
    return name if name and is_hostname_label(name) else f"nodes[{index}]"


def _control_plane(nodes: list[tuple[int, dict[str, Any]]]) -> Iterator[Finding]:
    # `master` (the practical's word) is reported on its own line as "use control-plane"; it
    # still counts as the user's choice of control plane here, so no second complaint.
    planes = [(i, node) for i, node in nodes
              if node.get("role") == "control-plane"
              or (isinstance(node.get("role"), str) and node["role"].lower() == "master")]
    if nodes and not planes:
        i, node = nodes[0]
        yield Finding(("nodes",), f"no node has `role: control-plane`: add it to exactly one "
                      f"node, e.g. `role: control-plane` under {_label(node, i)}", at_key=True)
    if len(planes) > 1:
        first = _label(planes[0][1], planes[0][0])
        for i, node in planes[1:]:
            yield Finding(("nodes", i, "role"), f"{_label(node, i)} is a second control-plane "
                          f"node (the first is {first}): pifleet builds one control plane, so "
                          "write `role: worker` here")


def _network(kubernetes: dict[str, Any], key: str) -> Network | None:
    value = kubernetes.get(key, str(KubernetesSettings.model_fields[key].default))
    try:
        return ipaddress.ip_network(value)
    except (TypeError, ValueError):
        return None  # the model reports the malformed value itself


def _spare_network(key: str, avoid: list[Network], addresses: list[Any]) -> str:
    for candidate in _SPARE_NETWORKS[key]:
        net = ipaddress.ip_network(candidate)
        if not any(net.overlaps(a) for a in avoid if a.version == net.version) \
                and not any(a in net for a in addresses if a.version == net.version):
            return candidate
    return "a private network that none of the above uses"


def _networks(nodes: list[tuple[int, dict[str, Any]]],
              kubernetes: dict[str, Any]) -> Iterator[Finding]:
    pod = _network(kubernetes, "pod_cidr")
    service = _network(kubernetes, "service_cidr")
    addresses: list[tuple[int, Any]] = []
    for i, node in nodes:
        try:
            addresses.append((i, ipaddress.ip_address(_text(node, "address") or "")))
        except ValueError:
            continue  # a DNS name: nothing to compare before it is resolved
    ips = [a for _, a in addresses]
    # Point at the one the user wrote: a default has no line of its own.
    loc = ("kubernetes", "pod_cidr" if "pod_cidr" in kubernetes or "service_cidr" not in kubernetes
           else "service_cidr")
    if pod and service and pod.version == service.version and pod.overlaps(service):
        spare = _spare_network("pod_cidr", [service], ips)
        yield Finding(loc, f"the pod network {pod} overlaps the service network {service} "
                      f"(kubernetes.service_cidr): use separate networks, e.g. `pod_cidr: {spare}`")
    for key, net, other in (("pod_cidr", pod, service), ("service_cidr", service, pod)):
        if net is None:
            continue
        name = f"{key.split('_')[0]} network (kubernetes.{key})"
        for i, address in addresses:
            if address.version == net.version and address in net:
                spare = _spare_network(key, [n for n in (other,) if n is not None], ips)
                yield Finding(("nodes", i, "address"), f"address {address} is inside the {name} "
                              f"{net}: pick another network, e.g. `{key}: {spare}` under "
                              "`kubernetes:`")
