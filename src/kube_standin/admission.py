"""Admission: what the real server's default admission plugins change or refuse on a write.

- NodeRestriction: a kubelet identity writes only its own Node (no role labels, no taint
  changes), its own lease, mirror pods bound to itself, the status of its own pods, evictions
  of its own pods, and tokens for ServiceAccounts its pods use.
- ServiceAccount: pods run as `default` unless told, with the `kube-api-access-*` projected
  volume holding its token, the cluster CA and the namespace.
- Priority and DefaultTolerationSeconds: pods get their priority and tolerate a not-ready or
  unreachable node for 300 seconds.
"""

from __future__ import annotations

from typing import Any

from . import nodeauth, nodelifecycle
from .auth import User
from .resources import Kind
from .store import ApiError, Obj, suffix

MIRROR = "kubernetes.io/config.mirror"
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
# Labels a kubelet may not set on its Node (the node-role ones are the admin's to set).
RESTRICTED_PREFIXES = ("node-restriction.kubernetes.io/", "node-role.kubernetes.io/")


def _forbidden(kind: Kind, name: str, message: str) -> ApiError:
    named = f' "{name}"' if name else ""
    return ApiError(403, "Forbidden", f"{kind.qualified}{named} is forbidden: {message}",
                    {"name": name, "group": kind.group, "kind": kind.plural})


def node_restriction(user: User | None, operation: str, kind: Kind, name: str, sub: str,
                     new: Obj | None, old: Obj | None) -> None:
    """NodeRestriction: refuse a kubelet's write outside its own objects.

    `operation` is create, update or delete; `old` is the live object (None on create).
    """
    node = nodeauth.node_name(user) if user is not None else None
    if node is None:
        return
    if kind.plural == "pods":
        _node_pods(node, operation, kind, name, sub, new, old)
    elif kind.plural == "nodes":
        _node_nodes(node, operation, kind, name, new, old)
    elif kind.plural == "leases" and operation == "create" and name != node:
        raise _forbidden(kind, name, f'node "{node}" can only access node lease with the same '
                                     "name as the requesting node")


def _node_pods(node: str, operation: str, kind: Kind, name: str, sub: str,
               new: Obj | None, old: Obj | None) -> None:
    bound = ((old or {}).get("spec") or {}).get("nodeName")
    if operation == "create" and not sub:
        meta, spec = (new or {}).get("metadata") or {}, (new or {}).get("spec") or {}
        if MIRROR not in (meta.get("annotations") or {}):
            raise _forbidden(kind, name, f'pod does not have "{MIRROR}" annotation, node '
                                         f'"{node}" can only create mirror pods')
        if spec.get("nodeName") != node:
            raise _forbidden(kind, name, f'node "{node}" can only create pods with '
                                         "spec.nodeName set to itself")
        refs = nodeauth.pod_references(new or {})
        for what, label in (("serviceaccounts", "service accounts"), ("secrets", "secrets"),
                            ("configmaps", "configmaps"),
                            ("persistentvolumeclaims", "persistentvolumeclaims")):
            if refs[what] - {""}:
                raise _forbidden(kind, name, f'node "{node}" can not create pods that '
                                             f"reference {label}")
        for ref in meta.get("ownerReferences") or []:
            if ref.get("kind") != "Node" or ref.get("name") != node:
                raise _forbidden(kind, name, f'node "{node}" can only create pods with an '
                                             "owner reference set to itself")
    elif operation == "delete" and not sub and bound != node:
        raise _forbidden(kind, name, f'node "{node}" can only delete pods with spec.nodeName '
                                     "set to itself")
    elif sub == "status" and bound != node:
        raise _forbidden(kind, name, f'node "{node}" can only update pod status for pods with '
                                     "spec.nodeName set to itself")
    elif sub == "eviction" and bound != node:
        raise _forbidden(kind, name, f'node "{node}" can only evict pods with spec.nodeName '
                                     "set to itself")


def _node_nodes(node: str, operation: str, kind: Kind, name: str, new: Obj | None,
                old: Obj | None) -> None:
    if name != node:
        raise _forbidden(kind, name, f'node "{node}" is not allowed to modify node "{name}"')
    if new is None:
        return
    before = ((old or {}).get("metadata") or {}).get("labels") or {}
    after = (new.get("metadata") or {}).get("labels") or {}
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)
                     and k.startswith(RESTRICTED_PREFIXES))
    if changed:
        raise _forbidden(kind, name, f'node "{node}" is not allowed to modify labels: '
                                     + ", ".join(changed))
    if old is not None and (old.get("spec") or {}).get("taints") != (new.get("spec") or {}).get(
            "taints"):
        raise _forbidden(kind, name, f'node "{node}" is not allowed to modify taints')


def token_for_node(user: User | None, kind: Kind, name: str, bound_pod: Obj | None) -> None:
    """NodeRestriction for TokenRequests: a node asks only for tokens bound to its pods."""
    node = nodeauth.node_name(user) if user is not None else None
    if node is None:
        return
    if bound_pod is None:
        raise _forbidden(kind, name, f'node "{node}" requested token not bound to a pod')
    if (bound_pod.get("spec") or {}).get("nodeName") != node:
        raise _forbidden(kind, name, f'node "{node}" requested token bound to a pod scheduled '
                                     "on a different node")


def pod_admission(pod: Obj, account: Obj | None) -> None:
    """ServiceAccount, Priority and DefaultTolerationSeconds on a new pod."""
    meta, spec = pod.setdefault("metadata", {}), pod.setdefault("spec", {})
    mirror = MIRROR in (meta.get("annotations") or {})
    if not mirror:
        spec.setdefault("serviceAccountName", "default")
        spec["serviceAccount"] = spec["serviceAccountName"]
        automount = spec.get("automountServiceAccountToken")
        if automount is None and account is not None:
            automount = account.get("automountServiceAccountToken")
        if automount is not False:
            _mount_token(spec)
    name = spec.get("priorityClassName", "")
    spec.setdefault("priority", PRIORITY_CLASSES.get(name, 0))
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    nodelifecycle.default_tolerations(spec)


def _mount_token(spec: dict[str, Any]) -> None:
    volumes = spec.setdefault("volumes", [])
    if any(v.get("name", "").startswith("kube-api-access-") for v in volumes):
        return
    name = f"kube-api-access-{suffix()}"
    volumes.append({"name": name, "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt",
                                                             "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}})
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        mounts = c.setdefault("volumeMounts", [])
        if not any(m.get("mountPath") == SA_MOUNT for m in mounts):
            mounts.append({"name": name, "readOnly": True, "mountPath": SA_MOUNT})
