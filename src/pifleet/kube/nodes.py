"""The nodes table as `kubectl get nodes` shows it: NAME, STATUS, ROLES, AGE, VERSION."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pifleet.kube.client import Api
from pifleet.kube.wait import NODE, condition

COLUMNS = ("NAME", "STATUS", "ROLES", "AGE", "VERSION")
_ROLE_PREFIX = "node-role.kubernetes.io/"


@dataclass(frozen=True)
class NodeRow:
    """One node, each field as kubectl prints it."""

    name: str
    status: str
    roles: str
    age: str
    version: str

    def cells(self) -> tuple[str, str, str, str, str]:
        """The row in COLUMNS order."""
        return (self.name, self.status, self.roles, self.age, self.version)


def short_duration(seconds: float) -> str:
    """A duration in kubectl's short form (apimachinery's HumanDuration): 45s, 3m20s, 5h12m,
    3d4h, 2y3d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def node_status(node: Mapping[str, Any]) -> str:
    """Ready, NotReady or Unknown (no Ready condition), plus SchedulingDisabled if cordoned."""
    ready = condition(node, "Ready")
    status = "Unknown" if ready is None else "Ready" if ready.get("status") == "True" \
        else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    return status


def node_roles(labels: Mapping[str, str] | None) -> str:
    """Roles from `node-role.kubernetes.io/ROLE` labels (and `kubernetes.io/role`), sorted."""
    roles = set()
    for key, value in (labels or {}).items():
        if key.startswith(_ROLE_PREFIX) and key[len(_ROLE_PREFIX):]:
            roles.add(key[len(_ROLE_PREFIX):])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def node_row(node: Mapping[str, Any], now: dt.datetime | None = None) -> NodeRow:
    """One node's row."""
    now = now or dt.datetime.now(dt.UTC)
    meta = node.get("metadata") or {}
    try:
        created = dt.datetime.fromisoformat(str(meta["creationTimestamp"]))
        age = short_duration((now - created).total_seconds())
    except (KeyError, ValueError):
        age = "<unknown>"
    info = (node.get("status") or {}).get("nodeInfo") or {}
    return NodeRow(str(meta.get("name", "")), node_status(node),
                   node_roles(meta.get("labels")), age, str(info.get("kubeletVersion", "")))


def node_rows(api: Api) -> list[NodeRow]:
    """Every node of the cluster, sorted by name as kubectl sorts them."""
    with api.talking():
        nodes = list(api.lightkube.list(NODE))
    now = dt.datetime.now(dt.UTC)
    return sorted((node_row(n, now) for n in nodes), key=lambda r: r.name)


def format_table(rows: list[NodeRow]) -> str:
    """The rows as kubectl prints them: columns padded to the widest cell, three spaces apart."""
    table = [COLUMNS, *(r.cells() for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip() for row in table)
