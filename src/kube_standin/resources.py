"""The kinds the API server stand-in serves and its discovery documents."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CREATE_ONLY = ("create",)
READ_ONLY = ("get", "list", "watch")


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
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def api_version(self) -> str:
        """`v1` or `group/version`."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Storage key prefix, e.g. `apps/daemonsets`."""
        return f"{self.group}/{self.plural}" if self.group else self.plural

    @property
    def stored(self) -> bool:
        """False for reviews, which are answered at once and never kept."""
        return self.verbs != CREATE_ONLY

    @property
    def qualified(self) -> str:
        """`plural.group`, as error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


AUTHN = "authentication.k8s.io"
AUTHZ = "authorization.k8s.io"
KINDS: list[Kind] = [
    Kind("", "v1", "Namespace", "namespaces", False, ("ns",), ("status", "finalize")),
    Kind("", "v1", "Node", "nodes", False, ("no",), ("status", "proxy")),
    Kind("", "v1", "Pod", "pods", True, ("po",), ("status", "eviction", "log", "exec", "attach",
                                                  "portforward", "proxy"), ("all",)),
    Kind("", "v1", "Service", "services", True, ("svc",), ("status", "proxy"), ("all",)),
    Kind("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), ("token",)),
    Kind("", "v1", "Secret", "secrets", True),
    Kind("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    Kind("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    Kind("", "v1", "Event", "events", True, ("ev",)),
    Kind("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("status",), ("all",)),
    Kind("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("status", "scale"),
         ("all",)),
    Kind("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("status", "scale"),
         ("all",)),
    Kind("apps", "v1", "ControllerRevision", "controllerrevisions", True),
    Kind("batch", "v1", "Job", "jobs", True, (), ("status",), ("all",)),
    Kind("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    Kind("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    Kind("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    Kind("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    Kind("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    Kind("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests",
         False, ("csr",), ("approval", "status")),
    Kind("coordination.k8s.io", "v1", "Lease", "leases", True),
    # Listed (always empty) so that kubectl's validation of an unknown kind ends in the real
    # "no matches for kind" message; custom resources are not served.
    Kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
         False, ("crd", "crds"), verbs=READ_ONLY),
    Kind(AUTHN, "v1", "TokenReview", "tokenreviews", False, verbs=CREATE_ONLY),
    Kind(AUTHN, "v1", "SelfSubjectReview", "selfsubjectreviews", False, verbs=CREATE_ONLY),
    Kind(AUTHZ, "v1", "SubjectAccessReview", "subjectaccessreviews", False, verbs=CREATE_ONLY),
    Kind(AUTHZ, "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
         verbs=CREATE_ONLY),
    Kind(AUTHZ, "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False,
         verbs=CREATE_ONLY),
    Kind(AUTHZ, "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", True,
         verbs=CREATE_ONLY),
]

# What discovery says about each subresource (`plural/sub` before `sub`): (group, version,
# kind; "" = the parent's) and its verbs.
PROXY_VERBS = ("create", "delete", "get", "patch", "update")
SUBRESOURCES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "status": ("", "", "", ("get", "patch", "update")),
    "scale": ("autoscaling", "v1", "Scale", ("get", "patch", "update")),
    "eviction": ("policy", "v1", "Eviction", ("create",)),
    "token": (AUTHN, "v1", "TokenRequest", ("create",)),
    "approval": ("", "", "", ("get", "patch", "update")),
    "finalize": ("", "", "", ("update",)),
    "log": ("", "", "Pod", ("get",)),
    "exec": ("", "", "PodExecOptions", ("create", "get")),
    "attach": ("", "", "PodAttachOptions", ("create", "get")),
    "portforward": ("", "", "PodPortForwardOptions", ("create", "get")),
    "pods/proxy": ("", "", "PodProxyOptions", PROXY_VERBS),
    "services/proxy": ("", "", "ServiceProxyOptions", PROXY_VERBS),
    "nodes/proxy": ("", "", "NodeProxyOptions", PROXY_VERBS),
}

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


def must(group: str, version: str, plural: str) -> Kind:
    """`find` for kinds the stand-in itself relies on."""
    kind = find(group, version, plural)
    if kind is None:
        raise KeyError(f"{group}/{version}/{plural}")
    return kind


# The kinds the server's own code works with.
NAMESPACES = must("", "v1", "namespaces")
NODES = must("", "v1", "nodes")
PODS = must("", "v1", "pods")
SERVICES = must("", "v1", "services")
SERVICE_ACCOUNTS = must("", "v1", "serviceaccounts")
SECRETS = must("", "v1", "secrets")
CONFIGMAPS = must("", "v1", "configmaps")
ENDPOINTS = must("", "v1", "endpoints")
EVENTS = must("", "v1", "events")
DEPLOYMENTS = must("apps", "v1", "deployments")
REPLICASETS = must("apps", "v1", "replicasets")
DAEMONSETS = must("apps", "v1", "daemonsets")
REVISIONS = must("apps", "v1", "controllerrevisions")
JOBS = must("batch", "v1", "jobs")
ENDPOINT_SLICES = must("discovery.k8s.io", "v1", "endpointslices")
CLUSTER_ROLES = must("rbac.authorization.k8s.io", "v1", "clusterroles")
CLUSTER_ROLE_BINDINGS = must("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
CSRS = must("certificates.k8s.io", "v1", "certificatesigningrequests")


def api_versions(server_address: str) -> dict[str, Any]:
    """`/api`: the legacy group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                        "serverAddress": server_address}],
    }


def _group_version(name: str) -> dict[str, str]:
    version = GROUPS[name][0].version
    return {"groupVersion": f"{name}/{version}", "version": version}


def api_group_list() -> dict[str, Any]:
    """`/apis`: every named group and its one version."""
    groups = [{"name": name, "versions": [_group_version(name)],
               "preferredVersion": _group_version(name)} for name in GROUPS if name]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(name: str) -> dict[str, Any] | None:
    """`/apis/NAME`: one group."""
    if not name or name not in GROUPS:
        return None
    gv = _group_version(name)
    return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": [gv],
            "preferredVersion": gv}


def _subresource(k: Kind, sub: str) -> tuple[str, str, str, tuple[str, ...]]:
    """(group, version, kind, verbs) of one subresource of `k`, the parent's filled in."""
    group, version, kind, verbs = SUBRESOURCES.get(f"{k.plural}/{sub}") or SUBRESOURCES[sub]
    return (group or k.group, version or k.version, kind or k.kind, verbs)


DISCOVERY_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def aggregated_discovery(legacy: bool) -> dict[str, Any]:
    """`/api` (legacy) or `/apis` as an `apidiscovery.k8s.io/v2` APIGroupDiscoveryList: every
    group, version, resource and subresource in one document (kubectl 1.26+ asks for it)."""
    items = []
    for name, kinds in GROUPS.items():
        if bool(name) == legacy:
            continue
        served = []
        for k in kinds:
            entry: dict[str, Any] = {
                "resource": k.plural,
                "responseKind": {"group": k.group, "version": k.version, "kind": k.kind},
                "scope": "Namespaced" if k.namespaced else "Cluster",
                "singularResource": k.kind.lower(), "verbs": list(k.verbs)}
            if k.short:
                entry["shortNames"] = list(k.short)
            if k.categories:
                entry["categories"] = list(k.categories)
            subs = []
            for sub in k.subresources:
                group, version, kind, verbs = _subresource(k, sub)
                subs.append({"subresource": sub, "responseKind": {
                    "group": group, "version": version, "kind": kind}, "verbs": list(verbs)})
            if subs:
                entry["subresources"] = subs
            served.append(entry)
        items.append({"metadata": {"name": name, "creationTimestamp": None},
                      "versions": [{"version": kinds[0].version, "resources": served,
                                    "freshness": "Current"}]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": items}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    """`/api/v1` or `/apis/G/V`: the resources and subresources of one group version."""
    kinds = [k for k in GROUPS.get(group, []) if k.version == version]
    if not kinds:
        return None
    resources: list[dict[str, Any]] = []
    for k in kinds:
        entry: dict[str, Any] = {
            "name": k.plural, "singularName": k.kind.lower(), "namespaced": k.namespaced,
            "kind": k.kind, "verbs": list(k.verbs),
        }
        if k.short:
            entry["shortNames"] = list(k.short)
        if k.categories:
            entry["categories"] = list(k.categories)
        resources.append(entry)
        for sub in k.subresources:
            sub_group, sub_version, sub_kind, verbs = _subresource(k, sub)
            item: dict[str, Any] = {"name": f"{k.plural}/{sub}", "singularName": "",
                                    "namespaced": k.namespaced, "kind": sub_kind,
                                    "verbs": list(verbs)}
            if sub_group != k.group:
                item.update(group=sub_group, version=sub_version)
            resources.append(item)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": resources}
