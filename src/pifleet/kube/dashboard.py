"""The dashboards pifleet deploys, their login accounts and where the local proxy finds them.

Headlamp is the default (Kubernetes Dashboard is archived, facts.md section 1); Kubernetes
Dashboard v2.7.0, its last plain-manifest release, is the option. Both objects lists are built
here from the pinned images; logins are ServiceAccount tokens from the TokenRequest API, never
a skipped login.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pifleet.errors import BadInput
from pifleet.kube import objects as o
from pifleet.kube.pins import (
    DASHBOARD_IMAGE,
    DASHBOARD_METRICS_SCRAPER_IMAGE,
    HEADLAMP_IMAGE,
)

LOGIN_NAMESPACE = "kube-system"
ADMIN_ACCOUNT = "pifleet-admin"
VIEWER_ACCOUNT = "pifleet-viewer"
NONE = "none"


@dataclass(frozen=True)
class Dashboard:
    """One dashboard: its objects and how to reach it through the API server's Service proxy."""

    name: str
    namespace: str
    deployment: str
    service: str
    scheme: str
    build: Callable[[], list[o.Obj]]

    @property
    def proxy_path(self) -> str:
        """The Service proxy path, as `kubectl proxy` users type it (facts.md section 9)."""
        return (f"/api/v1/namespaces/{self.namespace}/services/"
                f"{self.scheme}:{self.service}:/proxy/")

    def objects(self) -> list[o.Obj]:
        """Every object of this dashboard, in the order they must be applied."""
        return self.build()


def headlamp_objects() -> list[o.Obj]:
    """Headlamp in kube-system: Service `headlamp` 80 -> 4466 and its Deployment."""
    ns, app = "kube-system", {"k8s-app": "headlamp"}
    probe = o.http_probe(4466)
    pod = {
        "containers": [{
            "name": "headlamp",
            "image": HEADLAMP_IMAGE,
            "args": ["-in-cluster", "-plugins-dir=/headlamp/plugins"],
            "ports": [{"name": "http", "containerPort": 4466, "protocol": "TCP"}],
            "readinessProbe": probe,
            "livenessProbe": probe,
            "securityContext": {"runAsNonRoot": True, "privileged": False,
                                "allowPrivilegeEscalation": False,
                                "runAsUser": 100, "runAsGroup": 101},
        }],
        "nodeSelector": dict(o.LINUX_ONLY),
        "tolerations": [dict(o.CONTROL_PLANE_TOLERATION)],
    }
    return [
        o.service("headlamp", ns, 80, 4466, app, app),
        o.deployment("headlamp", ns, app, pod, app),
    ]


def kubernetes_dashboard_objects() -> list[o.Obj]:
    """Kubernetes Dashboard v2.7.0 and its metrics scraper, in namespace kubernetes-dashboard.

    The three Secrets are created empty: the dashboard fills them itself, and pifleet owning
    no `data` there means a re-run never fights it over those fields.
    """
    ns, name = "kubernetes-dashboard", "kubernetes-dashboard"
    app, scraper = {"k8s-app": name}, {"k8s-app": "dashboard-metrics-scraper"}
    secrets = [f"{name}-certs", f"{name}-csrf", f"{name}-key-holder"]
    settings = f"{name}-settings"
    hardened = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                "runAsUser": 1001, "runAsGroup": 2001}
    common = {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
              "serviceAccountName": name, "nodeSelector": dict(o.LINUX_ONLY),
              "tolerations": [dict(o.CONTROL_PLANE_TOLERATION)]}
    tmp = {"name": "tmp-volume", "emptyDir": {}}
    dashboard_pod = {**common, "containers": [{
        "name": name, "image": DASHBOARD_IMAGE,
        "ports": [{"containerPort": 8443, "protocol": "TCP"}],
        "args": ["--auto-generate-certificates", f"--namespace={ns}"],
        "volumeMounts": [{"name": f"{name}-certs", "mountPath": "/certs"},
                         {"name": "tmp-volume", "mountPath": "/tmp"}],
        "livenessProbe": o.http_probe(8443, "HTTPS"),
        "securityContext": hardened,
    }], "volumes": [{"name": f"{name}-certs", "secret": {"secretName": f"{name}-certs"}}, tmp]}
    scraper_pod = {**common, "containers": [{
        "name": "dashboard-metrics-scraper", "image": DASHBOARD_METRICS_SCRAPER_IMAGE,
        "ports": [{"containerPort": 8000, "protocol": "TCP"}],
        "livenessProbe": o.http_probe(8000),
        "volumeMounts": [{"name": "tmp-volume", "mountPath": "/tmp"}],
        "securityContext": hardened,
    }], "volumes": [tmp]}
    return [
        o.namespace(ns),
        o.service_account(name, ns, app),
        o.service(name, ns, 443, 8443, app, app),
        *[o.obj("v1", "Secret", s, ns, app, type="Opaque") for s in secrets],
        o.obj("v1", "ConfigMap", settings, ns, app),
        o.obj(o.RBAC, "Role", name, ns, app, rules=[
            o.rule([""], ["secrets"], ["get", "update", "delete"], secrets),
            o.rule([""], ["configmaps"], ["get", "update"], [settings]),
            o.rule([""], ["services"], ["proxy"], ["heapster", "dashboard-metrics-scraper"]),
            o.rule([""], ["services/proxy"], ["get"],
                   ["heapster", "http:heapster:", "https:heapster:",
                    "dashboard-metrics-scraper", "http:dashboard-metrics-scraper"]),
        ]),
        o.obj(o.RBAC, "ClusterRole", name, labels=app, rules=[
            o.rule(["metrics.k8s.io"], ["pods", "nodes"], ["get", "list", "watch"])]),
        o.binding("RoleBinding", name, "Role", name, [o.sa_subject(name, ns)], ns, app),
        o.binding("ClusterRoleBinding", name, "ClusterRole", name, [o.sa_subject(name, ns)],
                  labels=app),
        o.deployment(name, ns, app, dashboard_pod, app),
        o.service("dashboard-metrics-scraper", ns, 8000, 8000, scraper, scraper),
        o.deployment("dashboard-metrics-scraper", ns, scraper, scraper_pod, scraper),
    ]


DASHBOARDS: dict[str, Dashboard] = {
    "headlamp": Dashboard("headlamp", "kube-system", "headlamp", "headlamp", "http",
                          headlamp_objects),
    "kubernetes-dashboard": Dashboard("kubernetes-dashboard", "kubernetes-dashboard",
                                      "kubernetes-dashboard", "kubernetes-dashboard", "https",
                                      kubernetes_dashboard_objects),
}


def dashboard(name: str) -> Dashboard:
    """The dashboard a fleet file names (`headlamp` or `kubernetes-dashboard`)."""
    try:
        return DASHBOARDS[name]
    except KeyError:
        choices = ", ".join([*DASHBOARDS, NONE])
        raise BadInput(f"unknown dashboard {name!r}: choose one of {choices}") from None


def login_account(read_only: bool = False) -> str:
    """The ServiceAccount whose token logs in to the dashboard."""
    return VIEWER_ACCOUNT if read_only else ADMIN_ACCOUNT


def login_objects(read_only: bool = False) -> list[o.Obj]:
    """The login ServiceAccount and its ClusterRoleBinding: cluster-admin, or `view`.

    The read-only login also gets a ClusterRole that reads nodes: the built-in `view` role
    does not list them (facts.md section 9), and a cluster's nodes are what a Pi fleet's
    dashboard is for. The two accounts are separate because a binding's role cannot change.
    """
    ns, account = LOGIN_NAMESPACE, login_account(read_only)
    subject = [o.sa_subject(account, ns)]
    if not read_only:
        return [o.service_account(account, ns),
                o.binding("ClusterRoleBinding", account, "ClusterRole", "cluster-admin",
                          subject)]
    nodes = f"{account}-nodes"
    return [
        o.service_account(account, ns),
        o.binding("ClusterRoleBinding", account, "ClusterRole", "view", subject),
        o.obj(o.RBAC, "ClusterRole", nodes,
              rules=[o.rule([""], ["nodes"], ["get", "list", "watch"])]),
        o.binding("ClusterRoleBinding", nodes, "ClusterRole", nodes, subject),
    ]
