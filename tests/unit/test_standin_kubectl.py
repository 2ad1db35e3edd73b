"""Real kubectl (1.27 and 1.33 where the machine has them) against the stand-in API server.

The everyday commands of someone learning Kubernetes, on a cluster of two stand-in kubelets
(real processes with node certificates, so the Node authorizer is in the path): get, describe,
create (kubectl sends protobuf), apply client- and server-side with manifests shaped like
current flannel (install-conf), Kubernetes Dashboard 2.7.0 and Headlamp, diff and server-side
dry runs, rollout status, history and undo, scale, expose, patch in its three types, label,
taint, cordon, drain and uncordon, auth whoami and can-i, create token, run, wait, delete,
Jobs. Each kubectl version works in its own namespace of the same cluster.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from manifests import FLANNEL_INSTALL_CONF
from standin_cluster import Cluster, Kubelet, kubectl_versions, running_cluster, start_kubelet
from ui_manifests import DASHBOARD_FULL, HEADLAMP_FULL

VERSIONS = kubectl_versions()
pytestmark = pytest.mark.skipif(not VERSIONS, reason="no kubectl on this machine")
NODES = ("pi-1", "pi-2")


def node_ready(cluster: Cluster, name: str) -> bool:
    status, node = cluster.request("GET", f"/api/v1/nodes/{name}")
    conditions = (node.get("status") or {}).get("conditions") or [] if status == 200 else []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@dataclass
class Lab:
    cluster: Cluster
    kubelets: list[Kubelet]
    dir: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("kubectl")
    with running_cluster(base / "server") as cluster:
        kubelets = [start_kubelet(cluster, name, base / "nodes") for name in NODES]
        try:
            cluster.wait_for("both nodes Ready", lambda: all(
                node_ready(cluster, n) for n in NODES))
            yield Lab(cluster, kubelets, base)
        finally:
            for k in kubelets:
                k.stop()


@dataclass
class Kubectl:
    """One kubectl version, working in its own namespace."""

    path: str
    cluster: Cluster
    ns: str
    files: Path

    @property
    def minor(self) -> int:
        found = re.search(r"1\.(\d+)", Path(self.path).name)
        if found:
            return int(found.group(1))
        out = subprocess.run([self.path, "version", "--client", "-o", "json"],
                             capture_output=True, text=True, timeout=30).stdout
        return int(json.loads(out)["clientVersion"]["minor"].rstrip("+"))

    def __call__(self, *args: str, check: bool = True, stdin: str | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([self.path, "--kubeconfig", str(self.cluster.admin), *args],
                             capture_output=True, text=True, timeout=timeout, input=stdin)
        if check:
            assert res.returncode == 0, f"kubectl {' '.join(args)}:\n{res.stdout}\n{res.stderr}"
        return res

    def n(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        """The command in this version's namespace."""
        return self("-n", self.ns, *args, **kw)  # type: ignore[arg-type]

    def json(self, *args: str) -> dict[str, object]:
        return json.loads(self.n("get", *args, "-o", "json").stdout)  # type: ignore[no-any-return]

    def file(self, name: str, text: str) -> str:
        path = self.files / name
        path.write_text(text)
        return str(path)


@pytest.fixture(scope="module", params=VERSIONS, ids=lambda p: Path(p).name)
def k(request: pytest.FixtureRequest, lab: Lab) -> Kubectl:
    tool = Kubectl(request.param, lab.cluster, "", lab.dir)
    tool.ns = f"learn-{tool.minor}"
    tool.files = lab.dir / tool.ns
    tool.files.mkdir(exist_ok=True)
    if tool("get", "namespace", tool.ns, check=False).returncode != 0:
        tool("create", "namespace", tool.ns)
    return tool


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()[1:] if line.strip()]


def test_nodes_show_ready_and_say_they_are_stand_ins(k: Kubectl) -> None:
    table = rows(k("get", "nodes").stdout)
    assert {(r[0], r[1]) for r in table} == {(n, "Ready") for n in NODES}
    wide = k("get", "nodes", "-o", "wide").stdout.splitlines()[0].split()
    assert wide[:6] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"]
    described = k("describe", "node", "pi-1").stdout
    assert "sandbox stand-in" in described and "Ready            True" in described


def test_deployment_rollout_scale_history_and_undo(k: Kubectl) -> None:
    k.n("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2")  # protobuf body
    k.n("rollout", "status", "deployment/web", "--timeout=60s")
    assert rows(k.n("get", "deployment", "web").stdout)[0][1] == "2/2"
    k.n("scale", "deployment/web", "--replicas=3")
    k.n("rollout", "status", "deployment/web", "--timeout=60s")
    k.n("wait", "--for=condition=Available", "deployment/web", "--timeout=30s")
    pods = rows(k.n("get", "pods", "-l", "app=web", "-o", "wide").stdout)
    assert len(pods) == 3 and {p[2] for p in pods} == {"Running"}
    assert {p[6] for p in pods} <= set(NODES)
    k.n("set", "image", "deployment/web", "nginx=nginx:1.28")
    k.n("annotate", "deployment/web", "kubernetes.io/change-cause=nginx 1.28")
    k.n("rollout", "status", "deployment/web", "--timeout=60s")
    history = k.n("rollout", "history", "deployment/web").stdout
    assert re.search(r"^1\s+<none>$", history, re.M) and re.search(r"^2\s+nginx 1.28$", history,
                                                                      re.M)
    sets = rows(k.n("get", "replicasets", "-l", "app=web").stdout)
    assert sorted(r[1] for r in sets) == ["0", "3"]
    k.n("rollout", "undo", "deployment/web")  # a JSON patch of the old template
    k.n("rollout", "status", "deployment/web", "--timeout=60s")
    image = k.n("get", "deployment", "web", "-o",
                "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert image == "nginx:1.27"
    history = k.n("rollout", "history", "deployment/web").stdout
    assert re.search(r"^3\s", history, re.M) and not re.search(r"^1\s", history, re.M)
    assert len(rows(k.n("get", "replicasets", "-l", "app=web").stdout)) == 2
    events = k.n("get", "events").stdout
    assert "ScalingReplicaSet" in events and "SuccessfulCreate" in events
    assert "Scheduled" in events


def test_expose_gives_cluster_ip_endpoints_and_slices(k: Kubectl) -> None:
    k.n("create", "deployment", "api", "--image=nginx:1.27", "--replicas=2", "--port=80")
    k.n("rollout", "status", "deployment/api", "--timeout=60s")
    k.n("expose", "deployment", "api", "--port=8080", "--target-port=80")
    svc = rows(k.n("get", "service", "api").stdout)[0]
    assert svc[1] == "ClusterIP" and svc[2].startswith("10.") and svc[4] == "8080/TCP"
    ips = set(k.n("get", "pods", "-l", "app=api", "-o",
                  "jsonpath={.items[*].status.podIP}").stdout.split())
    # The endpoints controller follows within a moment, as in a real cluster.
    k.cluster.wait_for("the service's endpoints", lambda: k.n(
        "get", "endpoints", "api", "-o", "jsonpath={.subsets[*].addresses[*].ip}",
        check=False).stdout.split(), 10)
    ep = k.json("endpoints", "api")
    addresses = {a["ip"] for s in ep["subsets"] for a in s["addresses"]}  # type: ignore[index,union-attr]
    assert addresses == ips and len(ips) == 2
    slices = k.n("get", "endpointslices", "-l", "kubernetes.io/service-name=api").stdout
    assert "IPv4" in slices and "80" in slices
    assert "Endpoints:" in k.n("describe", "service", "api").stdout


def test_apply_diff_and_server_dry_runs(k: Kubectl) -> None:
    dash = k.file("dashboard.yaml", DASHBOARD_FULL)
    k("apply", "-f", dash)
    k("apply", "--server-side", "-f", k.file("headlamp.yaml", HEADLAMP_FULL))
    flannel = k.file("flannel.yaml", FLANNEL_INSTALL_CONF)  # current flannel's shape
    k("apply", "-f", flannel)
    k("-n", "kubernetes-dashboard", "rollout", "status", "deployment/kubernetes-dashboard",
      "--timeout=60s")
    k("-n", "kube-system", "rollout", "status", "deployment/headlamp", "--timeout=60s")
    k("-n", "kube-flannel", "rollout", "status", "daemonset/kube-flannel-ds", "--timeout=60s")
    assert "unchanged" in k("apply", "-f", dash).stdout
    # A DaemonSet's history (ControllerRevisions) and undo.
    ds = ["-n", "kube-flannel", "daemonset/kube-flannel-ds"]
    k("-n", "kube-flannel", "set", "image", "daemonset/kube-flannel-ds",
      "kube-flannel=ghcr.io/flannel-io/flannel:v0.28.8")
    k("rollout", "status", *ds, "--timeout=60s")
    revisions = rows(k("rollout", "history", *ds).stdout)[1:]
    assert len(revisions) >= 2
    k("rollout", "undo", *ds)
    k("rollout", "status", *ds, "--timeout=60s")
    assert k("-n", "kube-flannel", "get", "daemonset", "kube-flannel-ds", "-o",
             "jsonpath={.spec.template.spec.containers[0].image}").stdout == \
        "ghcr.io/flannel-io/flannel:v0.28.9"
    # diff and dry runs show the change and make none.
    changed = k.file("dashboard-2.yaml", DASHBOARD_FULL.replace(
        "metrics-scraper:v1.0.8", "metrics-scraper:v1.0.9"))
    diff = k("diff", "-f", changed, check=False)
    assert diff.returncode == 1
    assert re.search(r"^\+\s+(- )?image: kubernetesui/metrics-scraper:v1.0.9$", diff.stdout,
                     re.M)
    assert "(server dry run)" in k("apply", "-f", changed, "--dry-run=server").stdout
    live = k("-n", "kubernetes-dashboard", "get", "deployment", "dashboard-metrics-scraper",
             "-o", "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert live == "kubernetesui/metrics-scraper:v1.0.8"
    assert k("diff", "-f", dash).returncode == 0
    k.n("create", "configmap", "ghost", "--from-literal=a=b", "--dry-run=server")
    assert k.n("get", "configmap", "ghost", check=False).returncode != 0
    k.n("delete", "configmap", "kube-root-ca.crt", "--dry-run=server")
    k.n("get", "configmap", "kube-root-ca.crt")
    # A misspelt field: refused where kubectl asks for strict validation (1.25 and later),
    # otherwise dropped with a warning, as by a real server.
    typo = k.n("apply", "-f", k.file("typo.yaml", "apiVersion: v1\nkind: ConfigMap\n"
                                                   "metadata: {name: typo}\ndatta: {a: b}\n"),
               check=False)
    assert 'unknown field "datta"' in typo.stderr
    assert (typo.returncode != 0) == (k.minor >= 25)


def test_patch_label_annotate_and_taint(k: Kubectl) -> None:
    k.n("create", "deployment", "patched", "--image=busybox:1.36", "--replicas=1")
    k.n("patch", "deployment", "patched", "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"busybox","env":'
        '[{"name":"A","value":"1"}]}]}}}}')
    k.n("patch", "deployment", "patched", "--type=merge", "-p",
        '{"metadata":{"labels":{"team":"blue"}}}')
    k.n("patch", "deployment", "patched", "--type=json", "-p",
        '[{"op":"replace","path":"/spec/replicas","value":2},'
        '{"op":"add","path":"/metadata/labels/owner","value":"me"}]')
    got = k.json("deployment", "patched")
    spec = got["spec"]  # type: ignore[index]
    container = spec["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["image"] == "busybox:1.36" and container["env"] == [{"name": "A",
                                                                          "value": "1"}]
    assert spec["replicas"] == 2  # type: ignore[index]
    assert got["metadata"]["labels"]["team"] == "blue"  # type: ignore[index]
    assert got["metadata"]["labels"]["owner"] == "me"  # type: ignore[index]
    bad = k.n("patch", "deployment", "patched", "--type=json", "-p",
              '[{"op":"test","path":"/spec/replicas","value":5}]', check=False)
    assert bad.returncode != 0
    k.n("label", "deployment", "patched", "tier=back")
    k.n("annotate", "deployment", "patched", "note=x")
    assert "tier=back" in k.n("get", "deployment", "patched", "--show-labels").stdout
    k("label", "node", "pi-2", f"seen-by-{k.minor}=yes")
    k("taint", "node", "pi-2", f"test-{k.minor}=x:NoSchedule")
    assert f"test-{k.minor}=x:NoSchedule" in k("describe", "node", "pi-2").stdout
    k("taint", "node", "pi-2", f"test-{k.minor}-")
    k("label", "node", "pi-2", f"seen-by-{k.minor}-")


def test_cordon_drain_and_uncordon(k: Kubectl) -> None:
    k.n("create", "deployment", "moved", "--image=nginx:1.27", "--replicas=2")
    k.n("rollout", "status", "deployment/moved", "--timeout=60s")
    k("cordon", "pi-1")
    try:
        assert rows(k("get", "node", "pi-1").stdout)[0][1] == "Ready,SchedulingDisabled"
        empty_dir = "--delete-emptydir-data" if k.minor >= 20 else "--delete-local-data"
        # Before 1.22 kubectl knows only policy/v1beta1 evictions, which 1.34 no longer
        # serves: it deletes the pods instead, as against a real server.
        k("drain", "pi-1", "--ignore-daemonsets", empty_dir, "--timeout=60s")
        # The evicted pods come back on the other node.
        k.cluster.wait_for("the pods on pi-2", lambda: k.n(
            "get", "pods", "-l", "app=moved", "--field-selector=status.phase=Running", "-o",
            "jsonpath={.items[*].spec.nodeName}").stdout.split() == ["pi-2", "pi-2"], 60)
        left = k("get", "pods", "-A", "--field-selector=spec.nodeName=pi-1", "-o",
                 "jsonpath={.items[*].metadata.ownerReferences[0].kind}").stdout.split()
        assert set(left) <= {"DaemonSet"}
    finally:
        k("uncordon", "pi-1")
    assert rows(k("get", "node", "pi-1").stdout)[0][1] == "Ready"


def test_auth_whoami_and_can_i(k: Kubectl) -> None:
    whoami = k("auth", "whoami", check=False)
    if k.minor >= 28:
        assert whoami.returncode == 0
        assert "kubernetes-super-admin" in whoami.stdout and "system:masters" in whoami.stdout
    elif k.minor >= 26:  # asks for the beta API, which a 1.34 server does not serve either
        assert "the selfsubjectreviews API is not enabled" in whoami.stderr
    assert k("auth", "can-i", "create", "deployments").stdout.strip() == "yes"
    k.n("create", "serviceaccount", "viewer")
    k.n("create", "rolebinding", "viewer", "--clusterrole=view",
        f"--serviceaccount={k.ns}:viewer")
    as_viewer = ["--as", f"system:serviceaccount:{k.ns}:viewer"]
    for verb, resource, answer in (("list", "pods", "yes"), ("get", "secrets", "no"),
                                   ("create", "deployments", "no")):
        got = k.n("auth", "can-i", verb, resource, *as_viewer, check=False)
        assert got.stdout.strip() == answer, (verb, resource, got.stderr)
    assert k("auth", "can-i", "list", "nodes", *as_viewer, check=False).stdout.strip() == "no"
    listed = k.n("auth", "can-i", "--list", *as_viewer).stdout
    assert "pods " in listed and "secrets" not in listed
    denied = k.n("get", "secrets", *as_viewer, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr


def test_roles_tokens_and_access(k: Kubectl) -> None:
    k.n("create", "serviceaccount", "robot")
    k.n("create", "role", "pod-reader", "--verb=get,list,watch", "--resource=pods")
    k("create", "clusterrole", f"node-reader-{k.minor}", "--verb=get,list", "--resource=nodes")
    if k.minor >= 24:
        token = k.n("create", "token", "robot", "--duration=15m").stdout.strip()
    else:  # `create token` came with 1.24: ask the TokenRequest API directly
        token = k.cluster.request("POST", f"/api/v1/namespaces/{k.ns}/serviceaccounts/robot/"
                                  "token", {"spec": {}})[1]["status"]["token"]
    server = ["--kubeconfig", "/dev/null", "--server", f"https://127.0.0.1:{k.cluster.port}",
              "--certificate-authority", str(k.cluster.dir / "ca.crt"), "--token", token]

    def as_robot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([k.path, *server, "-n", k.ns, *args], capture_output=True,
                              text=True, timeout=30)

    assert "forbidden" in as_robot("get", "pods").stderr
    k.n("create", "rolebinding", "robot-reads", "--role=pod-reader",
        f"--serviceaccount={k.ns}:robot")
    assert as_robot("get", "pods").returncode == 0
    assert "forbidden" in as_robot("get", "nodes").stderr
    k("create", "clusterrolebinding", f"robot-nodes-{k.minor}",
      f"--clusterrole=node-reader-{k.minor}", f"--serviceaccount={k.ns}:robot")
    assert "pi-1" in as_robot("get", "nodes").stdout


def test_run_wait_describe_and_delete(k: Kubectl) -> None:
    k.n("run", "solo", "--image=nginx:1.27", "--port=80")
    k.n("wait", "--for=condition=Ready", "pod/solo", "--timeout=60s")
    pod = k.json("pod", "solo")
    spec = pod["spec"]  # type: ignore[index]
    assert spec["nodeName"] in NODES and spec["serviceAccountName"] == "default"  # type: ignore[index]
    assert spec["containers"][0]["terminationMessagePath"] == "/dev/termination-log"  # type: ignore[index]
    described = k.n("describe", "pod", "solo").stdout
    assert "Successfully assigned" in described
    assert re.search(r"^Status:\s+Running$", described, re.M)
    k.n("delete", "pod", "solo", "--wait", "--timeout=30s")
    assert k.n("get", "pod", "solo", check=False).returncode != 0
    k.n("delete", "deployment", "web")
    k.cluster.wait_for("web's pods to go", lambda: not rows(k.n("get", "pods", "-l",
                                                                "app=web").stdout))
    assert rows(k.n("get", "replicasets", "-l", "app=web").stdout) == []


def test_lists_page_and_every_kind_prints(k: Kubectl) -> None:
    whole = k("get", "pods", "-A").stdout.splitlines()
    paged = k("get", "pods", "-A", "--chunk-size=1").stdout.splitlines()
    assert len(whole) > 3 and [line.split()[:2] for line in paged] == \
        [line.split()[:2] for line in whole]
    kinds = k("api-resources", "--verbs=list", "-o", "name").stdout.split()
    assert {"pods", "deployments.apps", "jobs.batch", "endpointslices.discovery.k8s.io"} <= \
        set(kinds)
    for kind in kinds:
        k("get", kind, "-A")


def test_jobs_and_run_once_pods_complete(k: Kubectl) -> None:
    k.n("create", "job", "hello", "--image=busybox:1.36", "--", "echo", "hello")  # protobuf
    k.n("wait", "--for=condition=complete", "job/hello", "--timeout=60s")
    job = rows(k.n("get", "job", "hello").stdout)[0]
    assert "1/1" in job
    batch = k.file("batch.yaml", f"""\
apiVersion: batch/v1
kind: Job
metadata: {{name: batch, namespace: {k.ns}}}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: work, image: "busybox:1.36", command: [sh, -c, "true"]}}]
""")
    k("apply", "-f", batch)
    k.n("wait", "--for=condition=complete", "job/batch", "--timeout=60s")
    phases = k.n("get", "pods", "-l", "job-name=batch", "-o",
                 "jsonpath={.items[*].status.phase}").stdout.split()
    assert phases == ["Succeeded"] * 3
    assert "Completed" in k.n("describe", "job", "batch").stdout
    k.n("run", "once", "--image=busybox:1.36", "--restart=Never", "--", "true")
    k.cluster.wait_for("pod once to complete", lambda: rows(
        k.n("get", "pod", "once").stdout)[0][2] == "Completed", 60)
