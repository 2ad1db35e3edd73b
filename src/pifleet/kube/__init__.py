"""Talking to the cluster: kubeconfig, manifests built in code, apply, wait (lightkube).

The phases call only what is exported here:

- kubeconfig: `fleet_kubeconfig` (admin.conf -> the fleet's renamed entries),
  `merge_kubeconfig` (into `$KUBECONFIG`, `~/.kube/config` or an explicit file),
  `completion_hint`;
- manifests: `flannel`, `dashboard` / `DASHBOARDS` (Headlamp, Kubernetes Dashboard),
  `login_objects` / `login_account`, all versions and images from `pins`;
  `FLANNEL_NAMESPACE` / `FLANNEL_DAEMONSET` to wait on;
- the API: `connect` (a kubeconfig in memory -> `Api`), `apply` (server-side, per-object
  outcome), `wait_nodes_ready` / `wait_daemonset` / `wait_deployment` (with progress),
  `login_token` / `request_token`, `node_rows` / `format_table`;
- `LocalProxy`: the dashboard's local proxy, as `kubectl proxy`.

Failures are `pifleet.errors.PifleetError`s with the fix in their message (`KubeError` and
its kinds for the API); no credential ever appears in one.
"""

from pifleet.kube.apply import Applied, ApplyConflict, Outcome, apply, apply_one
from pifleet.kube.client import Api, connect
from pifleet.kube.credentials import Credentials, credentials
from pifleet.kube.dashboard import (
    DASHBOARDS,
    LOGIN_NAMESPACE,
    NONE,
    Dashboard,
    dashboard,
    login_account,
    login_objects,
)
from pifleet.kube.errors import (
    ApiFailure,
    CertificateProblem,
    Forbidden,
    KubeError,
    Unauthorized,
    Unreachable,
)
from pifleet.kube.flannel import DAEMONSET as FLANNEL_DAEMONSET
from pifleet.kube.flannel import NAMESPACE as FLANNEL_NAMESPACE
from pifleet.kube.flannel import flannel
from pifleet.kube.kubeconfig import (
    FleetKubeconfig,
    MergeResult,
    completion_hint,
    fleet_kubeconfig,
    merge_kubeconfig,
)
from pifleet.kube.nodes import NodeRow, format_table, node_rows
from pifleet.kube.proxy import LocalProxy
from pifleet.kube.tokens import login_token, request_token
from pifleet.kube.wait import (
    Progress,
    WaitTimeout,
    node_progress,
    wait_daemonset,
    wait_deployment,
    wait_nodes_ready,
)

__all__ = [
    "DASHBOARDS", "FLANNEL_DAEMONSET", "FLANNEL_NAMESPACE", "LOGIN_NAMESPACE", "NONE", "Api",
    "ApiFailure", "Applied", "ApplyConflict", "CertificateProblem", "Credentials", "Dashboard",
    "FleetKubeconfig", "Forbidden", "KubeError", "LocalProxy", "MergeResult", "NodeRow", "Outcome",
    "Progress", "Unauthorized", "Unreachable", "WaitTimeout", "apply", "apply_one",
    "completion_hint", "connect", "credentials", "dashboard", "flannel", "fleet_kubeconfig",
    "format_table", "login_account", "login_objects", "login_token", "merge_kubeconfig",
    "node_progress", "node_rows", "request_token", "wait_daemonset", "wait_deployment",
    "wait_nodes_ready",
]
