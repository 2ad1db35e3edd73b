"""The Kubernetes API through lightkube, against the API stand-in: credentials held in memory,
server-side apply outcomes, waits, tokens, the nodes table and failures in pifleet's words."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from kube_cluster import (
    KUBECTL,
    StandinCluster,
    fleet_document,
    free_port,
    needs_kubectl,
    running_standin,
)
from kube_standin import pki
from pifleet.errors import BadInput, PifleetError
from pifleet.kube import (
    FLANNEL_DAEMONSET,
    FLANNEL_NAMESPACE,
    ApplyConflict,
    CertificateProblem,
    Forbidden,
    Outcome,
    Progress,
    Unauthorized,
    Unreachable,
    WaitTimeout,
    apply,
    connect,
    dashboard,
    flannel,
    fleet_kubeconfig,
    login_objects,
    login_token,
    node_rows,
    request_token,
    wait_daemonset,
    wait_deployment,
    wait_nodes_ready,
)
from pifleet.kube.client import Api
from pifleet.kube.nodes import format_table, short_duration

SRC = Path(__file__).resolve().parents[3] / "src"


def token_conf(cluster: StandinCluster, token: str) -> dict[str, object]:
    doc = fleet_document(cluster)
    doc["users"] = [{"name": "team1-admin", "user": {"token": token}}]  # type: ignore[index]
    return doc


# ---- credentials stay in memory ----

def test_no_credential_ever_touches_a_temporary_file(cluster: StandinCluster,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """lightkube writes inline certificate data to NamedTemporaryFile; pifleet must not."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a temporary file was made")

    for name in ("mkstemp", "NamedTemporaryFile", "TemporaryFile", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    from lightkube.config import models
    monkeypatch.setattr(models.FileStr, "__new__", refuse)
    fds = set(os.listdir("/proc/self/fd"))
    with connect(fleet_document(cluster)) as client:
        assert client.version() == "v1.34.1"
        assert [r.name for r in node_rows(client)] == ["black-pearl", "laperouse"]
    leaked = set(os.listdir("/proc/self/fd")) - fds
    assert not [fd for fd in leaked if "memfd" in os.readlink(f"/proc/self/fd/{fd}")
                if os.path.exists(f"/proc/self/fd/{fd}")]


def test_reprs_name_the_server_never_the_key(api: Api, cluster: StandinCluster) -> None:
    key = base64.b64encode(cluster.admin.key).decode()
    assert key[:32] not in repr(api) and key[:32] not in repr(api.credentials)
    assert "team1" in repr(api.credentials) and str(cluster.port) in repr(api)


# ---- server-side apply ----

def test_apply_reports_created_unchanged_changed(api: Api) -> None:
    first = apply(api, flannel("10.244.0.0/16"))
    assert [a.outcome for a in first] == [Outcome.CREATED] * 6
    again = apply(api, flannel("10.244.0.0/16"))
    assert not any(a.changed for a in again)
    seen: list[str] = []
    iface = apply(api, flannel("10.244.0.0/16", ["eth0"]), on_applied=lambda a: seen.append(
        a.ref))
    assert [a.ref for a in iface if a.changed] == ["DaemonSet/kube-flannel/kube-flannel-ds"]
    assert seen == [a.ref for a in iface]
    assert not any(a.changed for a in apply(api, flannel("10.244.0.0/16", ["eth0"])))


@needs_kubectl
def test_fields_changed_by_someone_else_are_reported_not_overwritten(
        api: Api, cluster: StandinCluster, tmp_path: Path) -> None:
    objects = dashboard("headlamp").objects()
    apply(api, objects)
    kubeconfig = tmp_path / "admin.conf"
    kubeconfig.write_text(cluster.local_conf)
    cluster.kubectl("-n", "kube-system", "patch", "deployment", "headlamp", "--type=merge",
                    "-p", '{"spec": {"replicas": 3}}', kubeconfig=kubeconfig)
    with pytest.raises(ApplyConflict) as err:
        apply(api, objects)
    assert "Deployment/kube-system/headlamp" in str(err.value)
    assert "kubectl-patch" in str(err.value) and "replicas" in str(err.value)
    forced = apply(api, objects, force=True)
    assert [a.ref for a in forced if a.changed] == ["Deployment/kube-system/headlamp"]


@needs_kubectl
def test_conflicts_with_pifleets_own_older_writes_are_taken_back(
        api: Api, cluster: StandinCluster, tmp_path: Path) -> None:
    objects = login_objects(read_only=True)
    apply(api, objects)
    kubeconfig = tmp_path / "admin.conf"
    kubeconfig.write_text(cluster.local_conf)
    cluster.kubectl("label", "clusterrole", "pifleet-viewer-nodes", "--overwrite",
                    "app.kubernetes.io/managed-by=someone", "--field-manager=pifleet",
                    kubeconfig=kubeconfig)
    result = apply(api, objects)
    assert [a.ref for a in result if a.changed] == ["ClusterRole/pifleet-viewer-nodes"]


def test_dry_run_reports_a_change_it_would_make(api: Api) -> None:
    apply(api, flannel("10.244.0.0/16"))
    dry = apply(api, flannel("10.244.0.0/16", ["wlan0"]), dry_run=True)
    assert [a.ref for a in dry if a.changed] == ["DaemonSet/kube-flannel/kube-flannel-ds"]
    assert all(a.dry_run for a in dry)


# ---- waits ----

def test_wait_for_nodes_judges_the_ready_condition(api: Api, cluster: StandinCluster) -> None:
    cluster.add_node("fregate", ready=False)
    seen: list[Progress] = []
    with pytest.raises(WaitTimeout) as err:
        wait_nodes_ready(api, ["laperouse", "fregate", "hermione"], timeout=1.2,
                         interval=0.2, on_progress=seen.append)
    message = str(err.value)
    assert "fregate: Ready=False (KubeletNotReady: container runtime network not ready" in \
        message
    assert "hermione: not registered" in message and "laperouse" not in message.split(";", 1)[1]
    assert err.value.progress.ready == 1 and err.value.progress.total == 3
    assert len(seen) == 1  # the state never changed: one report, not one per poll
    timer = threading.Timer(1.0, cluster.set_node_ready, ("fregate", True))
    timer.start()
    done = wait_nodes_ready(api, ["laperouse", "fregate"], timeout=15, interval=0.2,
                            on_progress=seen.append)
    timer.join()
    assert done.done and seen[-1] == done
    assert all(a != b for a, b in itertools.pairwise(seen))  # changes only


@contextmanager
def kubelets(cluster: StandinCluster, namespace: str) -> Iterator[None]:
    """Play the nodes' kubelets: keep marking the namespace's pods Running and Ready."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.3):
            cluster.ready_pods(namespace)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def test_wait_for_the_flannel_daemonset(api: Api, cluster: StandinCluster) -> None:
    apply(api, flannel("10.244.0.0/16"))
    with pytest.raises(WaitTimeout, match=r"not ready after 0\.5 s: daemonset kube-flannel"):
        wait_daemonset(api, "kube-flannel", "kube-flannel-ds", timeout=0.5, interval=0.1)
    nodes = len(node_rows(api))
    with kubelets(cluster, "kube-flannel"):
        done = wait_daemonset(api, FLANNEL_NAMESPACE, FLANNEL_DAEMONSET, timeout=15,
                              interval=0.2)
    assert done.ready == done.total == nodes


def test_wait_for_the_dashboard_deployment(api: Api, cluster: StandinCluster) -> None:
    apply(api, dashboard("kubernetes-dashboard").objects())
    with pytest.raises(WaitTimeout):
        wait_deployment(api, "kubernetes-dashboard", "kubernetes-dashboard", timeout=0.3,
                        interval=0.1)
    with kubelets(cluster, "kubernetes-dashboard"):
        done = wait_deployment(api, "kubernetes-dashboard", "kubernetes-dashboard",
                               timeout=15, interval=0.2)
    assert done.done and done.ready == 1


def test_wait_for_something_missing_says_not_found(api: Api) -> None:
    with pytest.raises(WaitTimeout, match="nope: not found"):
        wait_deployment(api, "kube-system", "nope", timeout=0.2, interval=0.1)


# ---- tokens ----

@needs_kubectl
def test_login_tokens_authenticate_and_are_scoped(api: Api, cluster: StandinCluster,
                                                  tmp_path: Path) -> None:
    apply(api, login_objects() + login_objects(read_only=True))
    admin = login_token(api)
    viewer = login_token(api, read_only=True)
    ca = tmp_path / "ca.crt"
    ca.write_bytes(cluster.ca.cert)
    base = [str(KUBECTL), "--kubeconfig", "/dev/null", "--server",
            f"https://127.0.0.1:{cluster.port}", "--certificate-authority", str(ca)]

    def as_(token: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, "--token", token, *args], capture_output=True,
                              text=True, timeout=60)

    assert "laperouse" in as_(admin, "get", "nodes").stdout
    assert as_(admin, "get", "secrets", "-A").returncode == 0
    assert "laperouse" in as_(viewer, "get", "nodes").stdout
    denied = as_(viewer, "get", "secrets", "-A")
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()


# ---- the nodes table ----

@needs_kubectl
def test_nodes_table_matches_kubectl_get_nodes(api: Api, cluster: StandinCluster,
                                               tmp_path: Path) -> None:
    kubeconfig = tmp_path / "admin.conf"
    kubeconfig.write_text(cluster.local_conf)
    cluster.kubectl("cordon", "black-pearl", kubeconfig=kubeconfig)
    try:
        ours = [list(r.cells()) for r in node_rows(api)]
        theirs = [line.split() for line in cluster.kubectl(
            "get", "nodes", kubeconfig=kubeconfig).stdout.splitlines()[1:]]
    finally:
        cluster.kubectl("uncordon", "black-pearl", kubeconfig=kubeconfig)
    assert [r[:3] + r[4:] for r in ours] == [r[:3] + r[4:] for r in theirs]
    assert ours[0][:3] == ["black-pearl", "Ready,SchedulingDisabled", "<none>"]
    assert all(r[3].endswith("s") for r in ours)  # young nodes: seconds
    table = format_table(node_rows(api)).splitlines()
    assert table[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert table[0].index("STATUS") == len(max((r.name for r in node_rows(api)), key=len)) + 3


@pytest.mark.parametrize(("seconds", "shown"), [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (59, "59s"), (119, "119s"), (120, "2m"),
    (150, "2m30s"), (599, "9m59s"), (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"),
    (3 * 3600 + 300, "3h5m"), (8 * 3600, "8h"), (47 * 3600 + 59 * 60, "47h"),
    (48 * 3600, "2d"), (50 * 3600, "2d2h"), (8 * 86400, "8d"), (729 * 86400, "729d"),
    (730 * 86400, "2y"), (733 * 86400, "2y3d"), (8 * 365 * 86400, "8y"),
])
def test_ages_in_kubectls_short_form(seconds: int, shown: str) -> None:
    assert short_duration(seconds) == shown


# ---- failures in pifleet's words ----

def test_unreachable_api(cluster: StandinCluster) -> None:
    doc = fleet_document(cluster)
    port = free_port()
    doc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"  # type: ignore[index]
    with connect(doc) as client, pytest.raises(Unreachable) as err:
        client.version()
    assert f"https://127.0.0.1:{port}" in str(err.value)
    assert "connection refused" in str(err.value)


def test_a_silent_server_is_unreachable_in_time(cluster: StandinCluster) -> None:
    with socket.socket() as silent:  # accepts the connection, never answers the TLS hello
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        doc = fleet_document(cluster)
        doc["clusters"][0]["cluster"]["server"] = \
            f"https://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with connect(doc, timeout=1) as client, pytest.raises(Unreachable) as err:
            client.version()
    assert "no answer in time" in str(err.value) and time.monotonic() - started < 5


def test_certificate_for_another_name(cluster: StandinCluster) -> None:
    with connect(fleet_document(cluster, address="localhost")) as client, \
            pytest.raises(CertificateProblem) as err:
        client.version()
    assert "not valid for localhost" in str(err.value)
    assert "--apiserver-cert-extra-sans=localhost" in str(err.value)


def test_another_clusters_ca(cluster: StandinCluster) -> None:
    doc = yaml.safe_load(cluster.admin_conf)
    other = base64.b64encode(pki.make_ca().cert).decode()
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = other
    fleet = fleet_kubeconfig(yaml.safe_dump(doc), name="team1", address="127.0.0.1")
    with connect(fleet.document()) as client, pytest.raises(CertificateProblem) as err:
        client.version()
    assert "not signed by the cluster CA" in str(err.value)
    assert "pifleet kubeconfig" in str(err.value)


@pytest.mark.parametrize(("days", "state"), [(2, "not yet valid"), (-400, "expired")])
def test_clock_problems_are_named_with_the_fix(tmp_path: Path, days: int, state: str) -> None:
    when = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=days)
    with running_standin(tmp_path, serving_not_before=when) as skewed, \
            connect(fleet_document(skewed)) as client, pytest.raises(CertificateProblem) as err:
        client.version()
    message = str(err.value)
    assert message.startswith("x509: ") and state in message
    assert "clock" in message and "timedatectl" in message


def test_refused_credentials_401(cluster: StandinCluster) -> None:
    with connect(token_conf(cluster, "not-a-token")) as client, \
            pytest.raises(Unauthorized) as err:
        node_rows(client)
    assert "401" in str(err.value) and "pifleet kubeconfig" in str(err.value)
    assert "not-a-token" not in str(err.value)


def test_forbidden_403(api: Api, cluster: StandinCluster) -> None:
    apply(api, login_objects(read_only=True))
    token = request_token(api, "pifleet-viewer", "kube-system")
    with connect(token_conf(cluster, token)) as client, pytest.raises(Forbidden) as err:
        request_token(client, "pifleet-admin", "kube-system")
    assert "forbids" in str(err.value) and token not in str(err.value)


def test_kubeconfig_without_usable_context_is_bad_input() -> None:
    with pytest.raises(PifleetError, match="no context 'missing'"):
        connect({"contexts": []}, "missing")


@pytest.mark.parametrize(("cluster_body", "user_body", "problem"), [
    ({"server": "https://127.0.0.1:1", "certificate-authority": "/nonexistent/ca.crt"}, {},
     "certificate-authority /nonexistent/ca.crt: No such file"),
    ({"server": "https://127.0.0.1:1", "certificate-authority-data": "bm90IGEgY2VydA=="}, {},
     "not a PEM certificate"),
    ({"server": "https://127.0.0.1:1"}, {"client-certificate-data": "!!", "client-key-data": ""},
     "client-certificate-data is not base64"),
    ({"server": "https://127.0.0.1:1"}, {"client-certificate-data": "bm8=",
                                         "client-key-data": "bm8="},
     "the client certificate and key cannot be used"),
    ({"server": "https://127.0.0.1:1"}, {"exec": {"command": "aws"}}, "exec plugin"),
    ({"server": "ftp://x"}, {}, "no usable server URL"),
])
def test_unusable_kubeconfig_entries_are_bad_input(cluster_body: dict[str, object],
                                                   user_body: dict[str, object],
                                                   problem: str) -> None:
    doc = {"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k",
                                                                          "user": "u"}}],
           "clusters": [{"name": "k", "cluster": cluster_body}],
           "users": [{"name": "u", "user": user_body}]}
    with pytest.raises(BadInput) as err:
        connect(doc, source="~/.kube/config")
    assert str(err.value).startswith("~/.kube/config: ") and problem in str(err.value)


# ---- under gevent, as `pifleet up` runs ----

GEVENT_SCRIPT = """
import json, sys
import pifleet.remote.engine  # patches the process for pyinfra, as `pifleet up` does
from gevent import monkey
assert monkey.is_module_patched("socket") and monkey.is_module_patched("ssl")
import gevent, http.client
import pifleet.kube as k

api = k.connect(json.load(open(sys.argv[1])))
print("version", api.version())
print("applied", ",".join(a.outcome for a in k.apply(api, k.login_objects())))
print("nodes", " ".join(r.name for r in k.node_rows(api)))
print("token", len(k.request_token(api, "pifleet-admin", "kube-system")) > 100)
print("ready", k.wait_nodes_ready(api, ["laperouse"], timeout=5).done)

def get(path):
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp.status, resp.read()

with k.LocalProxy(api.credentials) as proxy:
    jobs = [gevent.spawn(get, "/api/v1/nodes") for _ in range(4)]
    gevent.joinall(jobs, timeout=20)
    print("proxy", [j.value[0] if j.successful() else repr(j.exception) for j in jobs])
"""


def test_everything_works_in_a_gevent_patched_process(cluster: StandinCluster,
                                                      tmp_path: Path) -> None:
    import json

    doc = tmp_path / "kubeconfig.json"
    doc.write_text(json.dumps(fleet_document(cluster)))
    doc.chmod(0o600)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    res = subprocess.run([sys.executable, "-c", GEVENT_SCRIPT, str(doc)], capture_output=True,
                         text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    out = dict(line.split(" ", 1) for line in res.stdout.splitlines())
    assert out["version"] == "v1.34.1"
    assert set(out["applied"].split(",")) <= {"created", "unchanged"}
    assert "laperouse" in out["nodes"].split() and out["token"] == "True"
    assert out["ready"] == "True" and out["proxy"] == "[200, 200, 200, 200]"
