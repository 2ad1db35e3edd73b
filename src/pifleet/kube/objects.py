"""Small builders for the Kubernetes objects pifleet's manifests are made of (plain dicts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pifleet.kube.pins import MANAGED_BY

Obj = dict[str, Any]

RBAC = "rbac.authorization.k8s.io/v1"
# Current kubeadm taints the control plane with this key; a one-Pi fleet must still run its
# dashboard there.
CONTROL_PLANE_TOLERATION: Obj = {"key": "node-role.kubernetes.io/control-plane",
                                 "operator": "Exists", "effect": "NoSchedule"}
LINUX_ONLY: Obj = {"kubernetes.io/os": "linux"}


def obj(api_version: str, kind: str, name: str, namespace: str | None = None,
        labels: Mapping[str, str] | None = None, **body: Any) -> Obj:
    """One object: apiVersion, kind, metadata (with pifleet's managed-by label), then `body`."""
    metadata: Obj = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["labels"] = {**(labels or {}), **MANAGED_BY}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def namespace(name: str, labels: Mapping[str, str] | None = None) -> Obj:
    """A Namespace."""
    return obj("v1", "Namespace", name, labels=labels)


def service_account(name: str, ns: str, labels: Mapping[str, str] | None = None) -> Obj:
    """A ServiceAccount."""
    return obj("v1", "ServiceAccount", name, ns, labels)


def rule(groups: Sequence[str], resources: Sequence[str], verbs: Sequence[str],
         names: Sequence[str] = ()) -> Obj:
    """One RBAC policy rule."""
    out: Obj = {"apiGroups": list(groups), "resources": list(resources)}
    if names:
        out["resourceNames"] = list(names)
    out["verbs"] = list(verbs)
    return out


def sa_subject(name: str, ns: str) -> Obj:
    """A ServiceAccount as the subject of a binding."""
    return {"kind": "ServiceAccount", "name": name, "namespace": ns}


def binding(kind: str, name: str, role_kind: str, role: str, subjects: Sequence[Obj],
            ns: str | None = None, labels: Mapping[str, str] | None = None) -> Obj:
    """A RoleBinding or ClusterRoleBinding."""
    return obj(RBAC, kind, name, ns, labels,
               roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                        "name": role},
               subjects=list(subjects))


def service(name: str, ns: str, port: int, target: int, selector: Mapping[str, str],
            labels: Mapping[str, str] | None = None) -> Obj:
    """A ClusterIP Service with one TCP port."""
    return obj("v1", "Service", name, ns, labels,
               spec={"ports": [{"port": port, "targetPort": target, "protocol": "TCP"}],
                     "selector": dict(selector)})


def http_probe(port: int, scheme: str = "HTTP", path: str = "/", delay: int = 30,
               timeout: int = 30) -> Obj:
    """An httpGet probe."""
    return {"httpGet": {"scheme": scheme, "path": path, "port": port},
            "initialDelaySeconds": delay, "timeoutSeconds": timeout}


def deployment(name: str, ns: str, selector: Mapping[str, str], pod_spec: Obj,
               labels: Mapping[str, str] | None = None, replicas: int = 1) -> Obj:
    """A Deployment of `replicas` pods labelled with `selector`."""
    return obj("apps/v1", "Deployment", name, ns, labels,
               spec={"replicas": replicas, "revisionHistoryLimit": 10,
                     "selector": {"matchLabels": dict(selector)},
                     "template": {"metadata": {"labels": dict(selector)}, "spec": pod_spec}})


def ref(o: Mapping[str, Any]) -> str:
    """How an object is named in messages: `kind/name` or `kind/namespace/name`."""
    meta = o.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{o.get('kind', '?')}/{where}{meta.get('name', '?')}"
