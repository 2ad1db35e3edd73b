"""The kinds the API server stand-in serves, its discovery documents and kubectl's tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Kind:
    """One resource type: where it lives in the API and what kubectl calls it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = field(default=())

    @property
    def api_version(self) -> str:
        """`v1` or `group/version`."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Storage key prefix, e.g. `apps/daemonsets`."""
        return f"{self.group}/{self.plural}" if self.group else self.plural


KINDS: list[Kind] = [
    Kind("", "v1", "Namespace", "namespaces", False, ("ns",), ("status",)),
    Kind("", "v1", "Node", "nodes", False, ("no",), ("status",)),
    Kind("", "v1", "Pod", "pods", True, ("po",), ("status",), ("all",)),
    Kind("", "v1", "Service", "services", True, ("svc",), ("status",), ("all",)),
    Kind("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), ("token",)),
    Kind("", "v1", "Secret", "secrets", True),
    Kind("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    Kind("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    Kind("", "v1", "Event", "events", True, ("ev",)),
    Kind("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("status",), ("all",)),
    Kind("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("status",), ("all",)),
    Kind("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("status",), ("all",)),
    Kind("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    Kind("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    Kind("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    Kind("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    Kind("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests",
         False, ("csr",), ("approval", "status")),
    Kind("coordination.k8s.io", "v1", "Lease", "leases", True),
]

GROUPS: dict[str, list[Kind]] = {}
for _k in KINDS:
    GROUPS.setdefault(_k.group, []).append(_k)


def find(group: str, version: str, plural: str) -> Kind | None:
    """The kind served at `/apis/group/version/plural` (or `/api/v1/plural`)."""
    for k in KINDS:
        if k.group == group and k.version == version and k.plural == plural:
            return k
    return None


def by_kind(api_version: str, kind: str) -> Kind | None:
    """The kind for an object's `apiVersion` and `kind`."""
    for k in KINDS:
        if k.api_version == api_version and k.kind == kind:
            return k
    return None


def api_versions(server_address: str) -> dict[str, Any]:
    """`/api`: the legacy group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                        "serverAddress": server_address}],
    }


def api_group_list() -> dict[str, Any]:
    """`/apis`: every named group and its one version."""
    groups = []
    for name, kinds in GROUPS.items():
        if not name:
            continue
        gv = {"groupVersion": f"{name}/{kinds[0].version}", "version": kinds[0].version}
        groups.append({"name": name, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(name: str) -> dict[str, Any] | None:
    """`/apis/NAME`: one group."""
    kinds = GROUPS.get(name)
    if not kinds or not name:
        return None
    gv = {"groupVersion": f"{name}/{kinds[0].version}", "version": kinds[0].version}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": [gv],
            "preferredVersion": gv}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    """`/api/v1` or `/apis/G/V`: the resources and subresources of one group version."""
    kinds = [k for k in GROUPS.get(group, []) if k.version == version]
    if not kinds:
        return None
    resources: list[dict[str, Any]] = []
    for k in kinds:
        entry: dict[str, Any] = {
            "name": k.plural, "singularName": k.kind.lower(), "namespaced": k.namespaced,
            "kind": k.kind, "verbs": ALL_VERBS,
        }
        if k.short:
            entry["shortNames"] = list(k.short)
        if k.categories:
            entry["categories"] = list(k.categories)
        resources.append(entry)
        for sub in k.subresources:
            sub_kind = "TokenRequest" if sub == "token" else k.kind
            verbs = ["create"] if sub == "token" else ["get", "patch", "update"]
            resources.append({"name": f"{k.plural}/{sub}", "singularName": "",
                              "namespaced": k.namespaced, "kind": sub_kind, "verbs": verbs})
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": resources}


# ---- kubectl's server-side printing (`Accept: application/json;as=Table;...`) ----

def _age(obj: dict[str, Any], now: dt.datetime) -> str:
    stamp = obj.get("metadata", {}).get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    created = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    secs = max(0, int((now - created).total_seconds()))
    if secs < 120:
        return f"{secs}s"
    if secs < 7200:
        return f"{secs // 60}m"
    if secs < 172800:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


def _cond(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return {}


def _node_row(o: dict[str, Any], now: dt.datetime) -> list[Any]:
    ready = _cond(o, "Ready").get("status")
    # As kubectl prints it: anything but True (False or Unknown) is NotReady.
    status = "Unknown" if ready is None else "Ready" if ready == "True" else "NotReady"
    if (o.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    labels = o["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels
                   if k.startswith("node-role.kubernetes.io/"))
    info = o.get("status", {}).get("nodeInfo", {})
    addrs = {a["type"]: a["address"] for a in o.get("status", {}).get("addresses") or []}
    return [o["metadata"]["name"], status, ",".join(roles) or "<none>", _age(o, now),
            info.get("kubeletVersion", ""), addrs.get("InternalIP", "<none>"),
            addrs.get("ExternalIP", "<none>"), info.get("osImage", ""),
            info.get("kernelVersion", ""), info.get("containerRuntimeVersion", "")]


def _pod_row(o: dict[str, Any], now: dt.datetime) -> list[Any]:
    st = o.get("status", {})
    containers = (o.get("spec") or {}).get("containers") or []
    statuses = st.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    phase = st.get("phase", "Pending")
    for c in statuses:
        waiting = (c.get("state") or {}).get("waiting")
        if waiting:
            phase = waiting.get("reason", phase)
    return [o["metadata"]["name"], f"{ready}/{len(containers)}", phase,
            sum(c.get("restartCount", 0) for c in statuses), _age(o, now),
            st.get("podIP", "<none>"), (o.get("spec") or {}).get("nodeName", "<none>"),
            "<none>", "<none>"]


def _deploy_row(o: dict[str, Any], now: dt.datetime) -> list[Any]:
    st = o.get("status", {})
    want = (o.get("spec") or {}).get("replicas", 1)
    return [o["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{want}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0), _age(o, now)]


def _ds_row(o: dict[str, Any], now: dt.datetime) -> list[Any]:
    st = o.get("status", {})
    sel = ((o.get("spec") or {}).get("template", {}).get("spec", {}) or {}).get("nodeSelector")
    selector = ",".join(f"{k}={v}" for k, v in (sel or {}).items()) or "<none>"
    return [o["metadata"]["name"], st.get("desiredNumberScheduled", 0),
            st.get("currentNumberScheduled", 0), st.get("numberReady", 0),
            st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0), selector,
            _age(o, now)]


def _col(name: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    fmt = "name" if name == "Name" else ""
    return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}


_TABLES: dict[str, tuple[list[dict[str, Any]], Any]] = {
    "Node": ([_col("Name"), _col("Status"), _col("Roles"), _col("Age"), _col("Version"),
              _col("Internal-IP", priority=1), _col("External-IP", priority=1),
              _col("OS-Image", priority=1), _col("Kernel-Version", priority=1),
              _col("Container-Runtime", priority=1)], _node_row),
    "Pod": ([_col("Name"), _col("Ready"), _col("Status"), _col("Restarts", "integer"),
             _col("Age"), _col("IP", priority=1), _col("Node", priority=1),
             _col("Nominated Node", priority=1), _col("Readiness Gates", priority=1)], _pod_row),
    "Deployment": ([_col("Name"), _col("Ready"), _col("Up-to-date", "integer"),
                    _col("Available", "integer"), _col("Age")], _deploy_row),
    "DaemonSet": ([_col("Name"), _col("Desired", "integer"), _col("Current", "integer"),
                   _col("Ready", "integer"), _col("Up-to-date", "integer"),
                   _col("Available", "integer"), _col("Node Selector"), _col("Age")], _ds_row),
}


def table(kind: str, objects: list[dict[str, Any]], resource_version: str) -> dict[str, Any]:
    """A `meta.k8s.io/v1` Table of `objects`, the form kubectl asks for when printing."""
    now = dt.datetime.now(dt.UTC)
    columns, row = _TABLES.get(kind, ([_col("Name"), _col("Age")],
                                      lambda o, n: [o["metadata"]["name"], _age(o, n)]))
    rows = [{"cells": row(o, now),
             "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": o.get("metadata", {})}} for o in objects]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": columns, "rows": rows}


def must(group: str, version: str, plural: str) -> Kind:
    """`find` for kinds the stand-in itself relies on."""
    kind = find(group, version, plural)
    if kind is None:
        raise KeyError(f"{group}/{version}/{plural}")
    return kind


# ---- OpenAPI v3, only as much as kubectl consults ----
# kubectl (1.27+) validates on the server when the PATCH operation of an object's kind lists the
# `fieldValidation` query parameter in /openapi/v3; without that document it insists on
# downloading the full v2 schema and refuses to apply. The stand-in publishes the paths and that
# parameter, and no schemas: kubectl then falls back to its built-in patch metadata.

def openapi_root() -> dict[str, Any]:
    """`/openapi/v3`: one entry per group version."""
    paths = {}
    for name, kinds in GROUPS.items():
        gv = f"apis/{name}/{kinds[0].version}" if name else "api/v1"
        paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash=standin"}
    return {"paths": paths}


def openapi_group_version(group: str, version: str) -> dict[str, Any] | None:
    """`/openapi/v3/api/v1` or `/openapi/v3/apis/G/V`: PATCH operations and their parameters."""
    kinds = [k for k in GROUPS.get(group, []) if k.version == version]
    if not kinds:
        return None
    prefix = f"/apis/{group}/{version}" if group else "/api/v1"
    paths: dict[str, Any] = {}
    for k in kinds:
        where = f"{prefix}/namespaces/{{namespace}}/{k.plural}/{{name}}" if k.namespaced \
            else f"{prefix}/{k.plural}/{{name}}"
        params = [{"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
                  for n in ("dryRun", "fieldManager", "fieldValidation", "force")]
        paths[where] = {"patch": {
            "operationId": f"patch{k.kind}", "parameters": params,
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": group, "version": version,
                                                "kind": k.kind}}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (sandbox stand-in)",
                                         "version": version}, "paths": paths}
