"""The ClusterRoles and ClusterRoleBindings a real API server creates at start-up.

Their rules are facts of Kubernetes' bootstrap policy (`plugin/pkg/auth/authorizer/rbac/
bootstrappolicy`); `admin`, `edit` and `view` are aggregated from the `system:aggregate-to-*`
roles by label, as the real clusterrole-aggregation controller does (`controllers.aggregate`).
The real `view` cannot list nodes or read secrets; `edit` can write secrets but not roles.
The per-controller `system:controller:*` roles are left out: the stand-in's controllers run
inside the server.
"""

from __future__ import annotations

from typing import Any

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
ALL = sorted([*READ, *WRITE])
AGG = "rbac.authorization.k8s.io/aggregate-to-"
Rule = dict[str, Any]


def rule(verbs: list[str], groups: list[str], resources: list[str],
         names: list[str] | None = None) -> Rule:
    """A resource rule."""
    out: Rule = {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(resources)}
    if names:
        out["resourceNames"] = list(names)
    return out


def urls(verbs: list[str], paths: list[str]) -> Rule:
    """A non-resource rule."""
    return {"verbs": list(verbs), "nonResourceURLs": list(paths)}


def events(groups: list[str] | None = None) -> Rule:
    """Writing events, as most system components may."""
    return rule(["create", "patch", "update"], groups or ["", "events.k8s.io"], ["events"])


NODE_RULES: list[Rule] = [
    rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
    rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews",
                                                "subjectaccessreviews"]),
    rule(READ, [""], ["services"]),
    rule(["create", "get", "list", "watch"], [""], ["nodes"]),
    rule(["patch", "update"], [""], ["nodes/status"]),
    rule(["patch", "update"], [""], ["nodes"]),
    rule(["create", "patch", "update"], [""], ["events"]),
    rule(READ, [""], ["pods"]),
    rule(["create", "delete"], [""], ["pods"]),
    rule(["patch", "update"], [""], ["pods/status"]),
    rule(["create"], [""], ["pods/eviction"]),
    rule(READ, [""], ["configmaps", "secrets"]),
    rule(["get"], [""], ["persistentvolumeclaims", "persistentvolumes"]),
    rule(["get"], [""], ["endpoints"]),
    rule(["create", "get", "list", "watch"], ["certificates.k8s.io"],
         ["certificatesigningrequests"]),
    rule(["create", "delete", "get", "patch", "update"], ["coordination.k8s.io"], ["leases"]),
    rule(["get"], ["storage.k8s.io"], ["volumeattachments"]),
    rule(["create"], [""], ["serviceaccounts/token"]),
    rule(["get", "patch", "update"], [""], ["persistentvolumeclaims/status"]),
    rule(READ, ["storage.k8s.io"], ["csidrivers"]),
    rule(["create", "delete", "get", "patch", "update"], ["storage.k8s.io"], ["csinodes"]),
    rule(READ, ["node.k8s.io"], ["runtimeclasses"]),
]

_AGGREGATE_TO_EDIT: list[Rule] = [
    rule(READ, [""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
                      "services/proxy"]),
    rule(["impersonate"], [""], ["serviceaccounts"]),
    rule(WRITE, [""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
    rule(["create"], [""], ["pods/eviction"]),
    rule(WRITE, [""], ["configmaps", "events", "persistentvolumeclaims",
                       "replicationcontrollers", "replicationcontrollers/scale", "secrets",
                       "serviceaccounts", "services", "services/proxy"]),
    rule(["create"], [""], ["serviceaccounts/token"]),
    rule(WRITE, ["apps"], ["daemonsets", "deployments", "deployments/rollback",
                           "deployments/scale", "replicasets", "replicasets/scale",
                           "statefulsets", "statefulsets/scale"]),
    rule(WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
    rule(WRITE, ["batch"], ["cronjobs", "jobs"]),
    rule(WRITE, ["extensions"], ["daemonsets", "deployments", "deployments/rollback",
                                 "deployments/scale", "ingresses", "networkpolicies",
                                 "replicasets", "replicasets/scale",
                                 "replicationcontrollers/scale"]),
    rule(WRITE, ["policy"], ["poddisruptionbudgets"]),
    rule(WRITE, ["networking.k8s.io"], ["ingresses", "networkpolicies"]),
    rule(ALL, ["coordination.k8s.io"], ["leases"]),
]

_AGGREGATE_TO_VIEW: list[Rule] = [
    rule(READ, [""], ["configmaps", "endpoints", "persistentvolumeclaims",
                      "persistentvolumeclaims/status", "pods", "replicationcontrollers",
                      "replicationcontrollers/scale", "serviceaccounts", "services",
                      "services/status"]),
    rule(READ, [""], ["bindings", "events", "limitranges", "namespaces/status", "pods/log",
                      "pods/status", "replicationcontrollers/status", "resourcequotas",
                      "resourcequotas/status"]),
    rule(READ, [""], ["namespaces"]),
    rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
    rule(READ, ["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status",
                          "deployments", "deployments/scale", "deployments/status",
                          "replicasets", "replicasets/scale", "replicasets/status",
                          "statefulsets", "statefulsets/scale", "statefulsets/status"]),
    rule(READ, ["autoscaling"], ["horizontalpodautoscalers",
                                 "horizontalpodautoscalers/status"]),
    rule(READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
    rule(READ, ["extensions"], ["daemonsets", "daemonsets/status", "deployments",
                                "deployments/scale", "deployments/status", "ingresses",
                                "ingresses/status", "networkpolicies", "replicasets",
                                "replicasets/scale", "replicasets/status",
                                "replicationcontrollers/scale"]),
    rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
    rule(READ, ["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"]),
]


def _approver(signer: str) -> list[Rule]:
    return [rule(["approve"], ["certificates.k8s.io"], ["signers"], [signer])]


# name -> (rules, extra labels, aggregated-from label or "")
CLUSTER_ROLES: dict[str, tuple[list[Rule], dict[str, str], str]] = {
    "cluster-admin": ([rule(["*"], ["*"], ["*"]), urls(["*"], ["*"])], {}, ""),
    "admin": ([], {}, AGG + "admin"),
    "edit": ([], {AGG + "admin": "true"}, AGG + "edit"),
    "view": ([], {AGG + "edit": "true"}, AGG + "view"),
    "system:aggregate-to-admin": ([
        rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
        rule(ALL, ["rbac.authorization.k8s.io"], ["rolebindings", "roles"])],
        {AGG + "admin": "true"}, ""),
    "system:aggregate-to-edit": (_AGGREGATE_TO_EDIT, {AGG + "edit": "true"}, ""),
    "system:aggregate-to-view": (_AGGREGATE_TO_VIEW, {AGG + "view": "true"}, ""),
    "system:auth-delegator": ([
        rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
        rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"])], {}, ""),
    "system:basic-user": ([
        rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews",
                                                    "selfsubjectrulesreviews"]),
        rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"])], {}, ""),
    "system:certificates.k8s.io:certificatesigningrequests:nodeclient": ([
        rule(["create"], ["certificates.k8s.io"], ["certificatesigningrequests/nodeclient"])],
        {}, ""),
    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient": ([
        rule(["create"], ["certificates.k8s.io"],
             ["certificatesigningrequests/selfnodeclient"])], {}, ""),
    "system:certificates.k8s.io:kube-apiserver-client-approver": (
        _approver("kubernetes.io/kube-apiserver-client"), {}, ""),
    "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver": (
        _approver("kubernetes.io/kube-apiserver-client-kubelet"), {}, ""),
    "system:certificates.k8s.io:kubelet-serving-approver": (
        _approver("kubernetes.io/kubelet-serving"), {}, ""),
    "system:certificates.k8s.io:legacy-unknown-approver": (
        _approver("kubernetes.io/legacy-unknown"), {}, ""),
    "system:discovery": ([urls(["get"], [
        "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
        "/readyz", "/version", "/version/"])], {}, ""),
    "system:heapster": ([rule(READ, [""], ["events", "namespaces", "nodes", "pods"]),
                         rule(READ, ["extensions"], ["deployments"])], {}, ""),
    "system:kube-aggregator": ([rule(READ, [""], ["endpoints", "services"])], {}, ""),
    "system:kube-controller-manager": ([
        events(), rule(["create"], ["coordination.k8s.io"], ["leases"]),
        rule(["get", "update"], ["coordination.k8s.io"], ["leases"],
             ["kube-controller-manager"]),
        rule(["create"], [""], ["secrets", "serviceaccounts"]),
        rule(["delete"], [""], ["secrets"]),
        rule(["get"], [""], ["configmaps", "namespaces", "secrets", "serviceaccounts"]),
        rule(["update"], [""], ["secrets", "serviceaccounts"]),
        rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
        rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
        rule(["list", "watch"], ["*"], ["*"]),
        rule(["create"], [""], ["serviceaccounts/token"])], {}, ""),
    "system:kube-dns": ([rule(["list", "watch"], [""], ["endpoints", "services"])], {}, ""),
    "system:kube-scheduler": ([
        events(), rule(["create"], ["coordination.k8s.io"], ["leases"]),
        rule(["get", "update"], ["coordination.k8s.io"], ["leases"], ["kube-scheduler"]),
        rule(READ, [""], ["nodes"]), rule(["delete", "get", "list", "watch"], [""], ["pods"]),
        rule(["create"], [""], ["bindings", "pods/binding"]),
        rule(["patch", "update"], [""], ["pods/status"]),
        rule(READ, [""], ["replicationcontrollers", "services"]),
        rule(READ, ["apps", "extensions"], ["replicasets"]),
        rule(READ, ["apps"], ["statefulsets"]),
        rule(READ, ["policy"], ["poddisruptionbudgets"]),
        rule(READ, [""], ["persistentvolumeclaims", "persistentvolumes"]),
        rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
        rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
        rule(READ, ["storage.k8s.io"], ["csinodes"]), rule(READ, [""], ["namespaces"]),
        rule(READ, ["storage.k8s.io"], ["csidrivers"]),
        rule(READ, ["storage.k8s.io"], ["csistoragecapacities"])], {}, ""),
    "system:kubelet-api-admin": ([
        rule(READ, [""], ["nodes"]), rule(["proxy"], [""], ["nodes"]),
        rule(["*"], [""], ["nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats"])],
        {}, ""),
    "system:monitoring": ([urls(["get"], [
        "/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics", "/metrics/slis", "/readyz",
        "/readyz/*"])], {}, ""),
    "system:node": (NODE_RULES, {}, ""),
    "system:node-bootstrapper": ([rule(["create", "get", "list", "watch"],
                                       ["certificates.k8s.io"],
                                       ["certificatesigningrequests"])], {}, ""),
    "system:node-problem-detector": ([rule(["get"], [""], ["nodes"]),
                                      rule(["patch"], [""], ["nodes/status"]), events()],
                                     {}, ""),
    "system:node-proxier": ([rule(["list", "watch"], [""], ["endpoints", "services"]),
                             rule(READ, [""], ["nodes"]), events(),
                             rule(["list", "watch"], ["discovery.k8s.io"],
                                  ["endpointslices"])], {}, ""),
    "system:persistent-volume-provisioner": ([
        rule(["create", "delete", "get", "list", "watch"], [""], ["persistentvolumes"]),
        rule(["get", "list", "update", "watch"], [""], ["persistentvolumeclaims"]),
        rule(READ, ["storage.k8s.io"], ["storageclasses"]), rule(["watch"], [""], ["events"]),
        events()], {}, ""),
    "system:public-info-viewer": ([urls(["get"], [
        "/healthz", "/livez", "/readyz", "/version", "/version/"])], {}, ""),
    "system:service-account-issuer-discovery": ([urls(["get"], [
        "/.well-known/openid-configuration", "/openid/v1/jwks"])], {}, ""),
    "system:volume-scheduler": ([
        rule(["get", "list", "patch", "update", "watch"], [""], ["persistentvolumes"]),
        rule(READ, ["storage.k8s.io"], ["storageclasses"]),
        rule(["get", "list", "patch", "update", "watch"], [""], ["persistentvolumeclaims"])],
        {}, ""),
}

# name -> subjects as (kind, name[, namespace])
CLUSTER_ROLE_BINDINGS: dict[str, list[tuple[str, ...]]] = {
    "cluster-admin": [("Group", "system:masters")],
    "system:basic-user": [("Group", "system:authenticated")],
    "system:discovery": [("Group", "system:authenticated")],
    "system:public-info-viewer": [("Group", "system:authenticated"),
                                  ("Group", "system:unauthenticated")],
    "system:kube-controller-manager": [("User", "system:kube-controller-manager")],
    "system:kube-dns": [("ServiceAccount", "kube-dns", "kube-system")],
    "system:kube-scheduler": [("User", "system:kube-scheduler")],
    "system:monitoring": [("Group", "system:monitoring")],
    "system:node": [],
    "system:node-proxier": [("User", "system:kube-proxy")],
    "system:service-account-issuer-discovery": [("Group", "system:serviceaccounts")],
    "system:volume-scheduler": [("User", "system:kube-scheduler")],
}

DEFAULTS_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}


def cluster_roles() -> list[dict[str, Any]]:
    """The default ClusterRoles as objects (aggregated ones with empty rules until filled)."""
    out = []
    for name, (rules, labels, aggregated_from) in CLUSTER_ROLES.items():
        obj: dict[str, Any] = {
            "metadata": {"name": name, "labels": {**DEFAULTS_LABEL, **labels},
                         "annotations": dict(AUTOUPDATE)},
            "rules": [dict(r) for r in rules]}
        if aggregated_from:
            obj["aggregationRule"] = {"clusterRoleSelectors": [
                {"matchLabels": {aggregated_from: "true"}}]}
        out.append(obj)
    return out


def cluster_role_bindings() -> list[dict[str, Any]]:
    """The default ClusterRoleBindings as objects."""
    out = []
    for name, subjects in CLUSTER_ROLE_BINDINGS.items():
        subs = []
        for s in subjects:
            entry = {"kind": s[0], "name": s[1]}
            if s[0] == "ServiceAccount":
                entry["namespace"] = s[2]
            else:
                entry["apiGroup"] = "rbac.authorization.k8s.io"
            subs.append(entry)
        out.append({"metadata": {"name": name, "labels": dict(DEFAULTS_LABEL),
                                 "annotations": dict(AUTOUPDATE)},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                "name": name},
                    "subjects": subs})
    return out
