"""The Node authorizer: what a kubelet's identity (`system:node:NAME`) may read and write.

As the real one (with AuthorizeNodeWithSelectors, on since 1.32): a node reads its own Node,
the pods bound to it and only the Secrets, ConfigMaps and ServiceAccount tokens those pods use;
it writes its own Node and lease and its pods' status. Writes it is allowed here are narrowed to
its own objects by the NodeRestriction admission rules in `admission`. Anything else falls
through to RBAC, where a node has only what kubeadm binds to `system:nodes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .rbac_defaults import NODE_RULES
from .resources import PODS

if TYPE_CHECKING:
    from .auth import Attributes, User
    from .store import Store

NODE_LEASE_NAMESPACE = "kube-node-lease"


def node_name(user: User) -> str | None:
    """The node a kubelet identity names ('' if it names none), or None for other users."""
    if "system:nodes" in user.groups and user.name.startswith("system:node:"):
        return user.name[len("system:node:"):]
    return None


def selected(field_selector: str, key: str) -> str:
    """The value a field selector requires `key` to equal, or ''."""
    for term in (field_selector or "").split(","):
        k, sep, v = term.replace("==", "=").partition("=")
        if sep and not k.endswith("!") and k.strip() == key:
            return v.strip()
    return ""


def pod_references(pod: dict[str, Any]) -> dict[str, set[str]]:
    """The Secrets, ConfigMaps, PVCs and ServiceAccount a pod uses, by kind."""
    spec = pod.get("spec") or {}
    refs: dict[str, set[str]] = {"secrets": set(), "configmaps": set(),
                                 "persistentvolumeclaims": set(), "serviceaccounts": set()}
    if spec.get("serviceAccountName"):
        refs["serviceaccounts"].add(spec["serviceAccountName"])
    refs["secrets"] |= {s.get("name", "") for s in spec.get("imagePullSecrets") or []}
    for v in spec.get("volumes") or []:
        if v.get("secret"):
            refs["secrets"].add(v["secret"].get("secretName", ""))
        if v.get("configMap"):
            refs["configmaps"].add(v["configMap"].get("name", ""))
        if v.get("persistentVolumeClaim"):
            refs["persistentvolumeclaims"].add(v["persistentVolumeClaim"].get("claimName", ""))
        if (v.get("csi") or {}).get("nodePublishSecretRef"):
            refs["secrets"].add(v["csi"]["nodePublishSecretRef"].get("name", ""))
        for source in (v.get("projected") or {}).get("sources") or []:
            if source.get("secret"):
                refs["secrets"].add(source["secret"].get("name", ""))
            if source.get("configMap"):
                refs["configmaps"].add(source["configMap"].get("name", ""))
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or []),
                  *(spec.get("ephemeralContainers") or [])]
    for c in containers:
        for env in c.get("env") or []:
            source = env.get("valueFrom") or {}
            if source.get("secretKeyRef"):
                refs["secrets"].add(source["secretKeyRef"].get("name", ""))
            if source.get("configMapKeyRef"):
                refs["configmaps"].add(source["configMapKeyRef"].get("name", ""))
        for env_from in c.get("envFrom") or []:
            if env_from.get("secretRef"):
                refs["secrets"].add(env_from["secretRef"].get("name", ""))
            if env_from.get("configMapRef"):
                refs["configmaps"].add(env_from["configMapRef"].get("name", ""))
    return refs


def related(store: Store, node: str, resource: str, namespace: str, name: str) -> bool:
    """Whether a pod bound to `node` uses the named object (the authorizer's graph)."""
    pods = store.list(PODS, namespace, fields=f"spec.nodeName={node}")[0]
    if resource == "pods":
        return any(p["metadata"]["name"] == name for p in pods)
    return any(name in pod_references(p).get(resource, set()) for p in pods)


def _graph(store: Store, node: str, a: Attributes) -> tuple[bool, str]:
    if not a.name:
        return False, "No Object name found"
    if related(store, node, a.resource, a.namespace, a.name):
        return True, ""
    return False, f"no relationship found between node '{node}' and this object"


def decide(store: Store, node: str, a: Attributes) -> tuple[bool, str]:
    """(allowed, reason) for a request by the kubelet of `node`."""
    from .auth import rule_allows

    if not node:
        return False, "unknown node for user"
    if a.resource_request and a.group == "":
        if a.resource in ("secrets", "configmaps"):
            if a.verb not in ("get", "list", "watch"):
                return False, "can only read resources of this type"
            if a.subresource:
                return False, "cannot read subresource"
            if not a.namespace:
                return False, "can only read namespaced object of this type"
            return _graph(store, node, a)
        if a.resource == "persistentvolumeclaims":
            if a.verb != "get" or a.subresource:
                return False, "can only get individual resources of this type"
            return _graph(store, node, a)
        if a.resource == "serviceaccounts":
            if a.verb != "create" or not a.name:
                return False, "can only create tokens for individual service accounts"
            if a.subresource != "token":
                return False, "can only create token subresource of serviceaccount"
            return _graph(store, node, a)
        if a.resource == "nodes":
            if not a.subresource and a.verb in ("create", "update", "patch"):
                return True, ""  # NodeRestriction keeps it to the node's own object
            if not a.subresource and a.verb in ("get", "list", "watch"):
                if a.name == node:
                    return True, ""
                if not a.name:
                    return False, f"node '{node}' cannot read all nodes, only its own Node object"
                return False, f"node '{node}' cannot read '{a.name}', only its own Node object"
            if a.subresource == "status" and a.verb in ("update", "patch"):
                return True, ""
            return False, ""
        if a.resource == "pods":
            if not a.subresource and a.verb == "get":
                return _graph(store, node, a)
            if not a.subresource and a.verb in ("list", "watch"):
                if selected(a.field_selector, "spec.nodeName") == node:
                    return True, ""
                if a.name:
                    return _graph(store, node, a)
                return False, "can only list/watch pods with spec.nodeName field selector"
            if not a.subresource and a.verb in ("create", "delete"):
                return True, ""  # mirror pods; NodeRestriction checks the binding
            if a.subresource == "status" and a.verb in ("update", "patch"):
                return True, ""
            if a.subresource == "eviction" and a.verb == "create":
                return True, ""
            return False, ""
    if a.resource_request and a.group == "coordination.k8s.io" and a.resource == "leases":
        if a.verb not in ("get", "create", "update", "patch", "delete"):
            return False, "can only get, create, update, patch, or delete a node lease"
        if a.namespace != NODE_LEASE_NAMESPACE:
            return False, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system ' \
                          "namespace"
        if a.verb != "create" and a.name != node:
            return False, "can only access node lease with the same name as the requesting node"
        return True, ""
    if any(rule_allows(r, a) for r in NODE_RULES):
        return True, ""
    return False, ""
