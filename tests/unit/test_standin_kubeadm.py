"""kubeadm and kubelet stand-ins on this machine, each node in its own filesystem root.

The programs run as installed on a node: copied into a `kube_standin` package and started with
Debian's python3 when it has python3-cryptography and python3-yaml (the packages' Depends), so
the code is checked against the library versions the nodes have.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kube_standin import pki
from manifests import (
    DASHBOARD_LIKE,
    FLANNEL_INSTALL_CONF,
    FLANNEL_LIKE,
    HEADLAMP_DEPLOYMENT,
    HEADLAMP_SERVICE,
)
from standin_lab import (
    AS_USER,
    KUBECTL,
    NODE_SOURCE,
    Node,
    fetch,
    free_port,
    install_lib,
    kubectl_proxy,
    make_node,
    node_python,
)


@dataclass
class Lab:
    cp: Node
    workers: list[Node]
    api_port: int
    init: subprocess.CompletedProcess[str]

    @property
    def admin(self) -> Path:
        return self.cp.root / "etc/kubernetes/admin.conf"

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        return subprocess.run([KUBECTL, "--kubeconfig", str(self.admin), *args],
                              capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("kubeadm")
    lib = install_lib(base)
    sockets: list[socket.socket] = []
    cp = make_node(base, "cp1", lib, sockets)
    workers = [make_node(base, f"w{i}", lib, sockets) for i in (1, 2)]
    api_port = free_port()
    init = cp.kubeadm("init", *AS_USER, "--pod-network-cidr", "10.244.0.0/16", "--node-name", "cp1",
                      "--apiserver-advertise-address", "127.0.0.1",
                      f"--apiserver-bind-port={api_port}")
    try:
        yield Lab(cp, workers, api_port, init)
    finally:
        for node in [*workers, cp]:
            node.kubeadm("reset", "-f", timeout=30)
            node.kill_services()
        for s in sockets:
            s.close()


def join_args(lab: Lab) -> list[str]:
    out = lab.cp.kubeadm("token", "create", "--print-join-command")
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert words[:2] == ["kubeadm", "join"]
    return words[1:]


def test_init_succeeds_with_real_files_and_join_command(lab: Lab) -> None:
    assert lab.init.returncode == 0, lab.init.stdout + lab.init.stderr
    assert "Your Kubernetes control-plane has initialized successfully!" in lab.init.stdout
    assert "stand-in" in lab.init.stdout
    etc = lab.cp.root / "etc/kubernetes"
    for f in ("admin.conf", "super-admin.conf", "kubelet.conf", "pki/ca.crt", "pki/ca.key",
              "pki/apiserver.crt", "manifests/kube-apiserver.yaml"):
        assert (etc / f).exists(), f
    assert oct((etc / "admin.conf").stat().st_mode & 0o777) == "0o600"
    assert oct((etc / "pki/ca.key").stat().st_mode & 0o777) == "0o600"
    m = re.search(r"kubeadm join (\S+) --token (\S+) \\\n\t--discovery-token-ca-cert-hash "
                  r"(sha256:[0-9a-f]{64})", lab.init.stdout)
    assert m, lab.init.stdout
    assert m.group(1) == f"127.0.0.1:{lab.api_port}"
    assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", m.group(2))
    assert m.group(3) == pki.ca_hash((etc / "pki/ca.crt").read_bytes())


def test_second_init_fails_preflight(lab: Lab) -> None:
    again = lab.cp.kubeadm("init", "--apiserver-advertise-address", "127.0.0.1",
                           f"--apiserver-bind-port={lab.api_port}")
    assert again.returncode == 1
    assert "[ERROR FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml]: " \
           "/etc/kubernetes/manifests/kube-apiserver.yaml already exists" in again.stderr
    assert f"[ERROR Port-{lab.api_port}]: Port {lab.api_port} is in use" in again.stderr
    assert f"[ERROR Port-{lab.cp.kubelet_port}]" in again.stderr


def test_preflight_reports_swap_cgroups_runtime_and_forwarding(tmp_path: Path) -> None:
    sockets: list[socket.socket] = []
    node = make_node(tmp_path, "bad", tmp_path, sockets)
    shutil.copytree(NODE_SOURCE, tmp_path / "kube_standin",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (node.root / "proc/swaps").write_text("Filename Type Size Used Priority\n"
                                          "/swapfile file 102396 0 -2\n")
    (node.root / "proc/cgroups").write_text("memory\t0\t1\t0\n")
    (node.root / "proc/sys/net/ipv4/ip_forward").write_text("0\n")
    sockets[0].close()
    out = node.kubeadm("join", "127.0.0.1:1", "--token", "abcdef.0123456789abcdef",
                       "--discovery-token-ca-cert-hash", "sha256:00")
    assert out.returncode == 1
    for line in ("[ERROR Swap]: running with swap on is not supported. Please disable swap",
                 "[ERROR SystemVerification]: missing required cgroups: memory",
                 "[ERROR CRI]: container runtime is not running",
                 "[ERROR FileContent--proc-sys-net-ipv4-ip_forward]: "
                 "/proc/sys/net/ipv4/ip_forward contents are not set to 1"):
        assert line in out.stderr, out.stderr
    (node.root / "sys/fs/cgroup").mkdir(parents=True)
    (node.root / "sys/fs/cgroup/cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    out = node.kubeadm("join", "127.0.0.1:1", "--token", "abcdef.0123456789abcdef",
                       "--discovery-token-ca-cert-hash", "sha256:00",
                       "--ignore-preflight-errors=Swap,CRI,FileContent--proc-sys-net-ipv4-"
                       "ip_forward")
    assert "[WARNING Swap]" in out.stdout and "SystemVerification" not in out.stderr


def test_wrong_hash_fails_at_once_and_wrong_token_never_joins(lab: Lab) -> None:
    args = join_args(lab)
    w = lab.workers[0]
    bad_hash = [*args[:-1], "sha256:" + "0" * 64]
    started = time.monotonic()
    out = w.kubeadm(*bad_hash, *AS_USER, "--node-name", w.name,
                    "--apiserver-advertise-address", "127.0.0.1")
    assert out.returncode == 1 and time.monotonic() - started < 5
    assert "none of the public keys" in out.stderr and "are pinned" in out.stderr
    bad_token = list(args)
    bad_token[bad_token.index("--token") + 1] = "zzzzzz.0123456789abcdef"
    out = w.kubeadm(*bad_token, *AS_USER, "--node-name", w.name,
                    "--apiserver-advertise-address", "127.0.0.1")
    assert out.returncode == 1
    assert 'token id "zzzzzz" is invalid for this cluster or it has expired' in out.stderr
    assert not (w.root / "etc/kubernetes/kubelet.conf").exists()


@pytest.mark.skipif(KUBECTL is None, reason="no kubectl on this machine")
def test_join_then_flannel_makes_nodes_ready_and_rejoin_works(lab: Lab, tmp_path: Path) -> None:
    args = join_args(lab)
    for w in lab.workers:
        out = w.kubeadm(*args, *AS_USER, "--node-name", w.name,
                        "--apiserver-advertise-address", "127.0.0.1")
        assert out.returncode == 0, out.stderr
        assert "This node has joined the cluster:" in out.stdout
        assert (w.root / "etc/kubernetes/kubelet.conf").exists()
    again = lab.workers[0].kubeadm(*args, "--node-name", "w1")
    assert again.returncode == 1
    assert "[ERROR FileAvailable--etc-kubernetes-kubelet.conf]" in again.stderr
    nodes = lab.kubectl("get", "nodes", "--no-headers").stdout.split("\n")
    states = {line.split()[0]: line.split()[1] for line in nodes if line}
    assert states == {"cp1": "NotReady", "w1": "NotReady", "w2": "NotReady"}

    # Current flannel: the config is installed by `/opt/bin/install-conf SRC DST`.
    manifest = tmp_path / "flannel.yaml"
    manifest.write_text(FLANNEL_INSTALL_CONF)
    applied = lab.kubectl("apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    waited = lab.kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=40s")
    assert waited.returncode == 0, waited.stderr
    for node in (lab.cp, *lab.workers):
        conf = node.root / "etc/cni/net.d/10-flannel.conflist"
        assert '"type": "flannel"' in conf.read_text()
        assert oct(conf.stat().st_mode & 0o777) == "0o644"
        # Only the config: the plugin binary comes from an image the stand-in does not have.
        assert not (node.root / "opt/cni/bin/flannel").exists()
    pods = lab.kubectl("wait", "--for=condition=Ready", "pod", "--all", "-A", "--timeout=30s")
    assert pods.returncode == 0, pods.stderr

    w1 = lab.workers[0]
    reset = w1.kubeadm("reset", "-f")
    assert reset.returncode == 0, reset.stderr
    assert not (w1.root / "etc/kubernetes/kubelet.conf").exists()
    conf = w1.root / "etc/cni/net.d/10-flannel.conflist"
    assert conf.exists()  # like the real reset
    conf.unlink()  # as reset's message advises
    assert lab.kubectl("delete", "node", "w1").returncode == 0
    # The older manifest form (`cp -f SRC DST`) installs the config on the rejoined node.
    manifest.write_text(FLANNEL_LIKE)
    applied = lab.kubectl("apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    out = w1.kubeadm(*join_args(lab), *AS_USER, "--node-name", "w1",
                     "--apiserver-advertise-address", "127.0.0.1")
    assert out.returncode == 0, out.stderr
    waited = lab.kubectl("wait", "--for=condition=Ready", "node/w1", "--timeout=40s")
    assert waited.returncode == 0, waited.stderr
    assert '"type": "flannel"' in conf.read_text()


def test_expired_token_does_not_join(lab: Lab) -> None:
    out = lab.cp.kubeadm("token", "create", "--ttl", "1s", "--print-join-command")
    assert out.returncode == 0, out.stderr
    time.sleep(2)
    w = lab.workers[1]
    joined = w.kubeadm(*out.stdout.split()[1:], "--node-name", "w9",
                       "--ignore-preflight-errors=all")
    assert joined.returncode == 1
    assert "is invalid for this cluster or it has expired" in joined.stderr


def test_kubernetes_version_newer_than_kubeadm_is_refused(tmp_path: Path) -> None:
    node = Node("v", tmp_path, NODE_SOURCE.parent)
    out = subprocess.run([node_python(), "-m", "kube_standin.kubeadm", "init",
                          "--kubernetes-version", "v1.35.0"], env=node.env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "control plane version <= v1.34.1" in out.stderr


def test_token_list_and_version(lab: Lab) -> None:
    listed = lab.cp.kubeadm("token", "list")
    assert listed.returncode == 0
    assert listed.stdout.split("\n")[0].split()[:3] == ["TOKEN", "TTL", "EXPIRES"]
    assert "system:bootstrappers:kubeadm:default-node-token" in listed.stdout
    short = lab.cp.kubeadm("version", "-o", "short")
    assert short.stdout.strip() == "v1.34.1"
    long = lab.cp.kubeadm("version")
    assert 'GitVersion:"v1.34.1"' in long.stdout and "stand-in" in long.stdout


@pytest.mark.skipif(KUBECTL is None, reason="no kubectl on this machine")
def test_deleted_node_registers_again_with_its_mirror_pods(lab: Lab) -> None:
    def get(*args: str) -> str:
        return lab.kubectl("get", *args).stdout

    uid = get("node", "cp1", "-o", "jsonpath={.metadata.uid}")
    assert "kube-apiserver-cp1" in get("pods", "-n", "kube-system")
    assert lab.kubectl("delete", "node", "cp1").returncode == 0
    deadline = time.monotonic() + 40
    while get("node", "cp1", "-o", "jsonpath={.metadata.uid}") in ("", uid):
        assert time.monotonic() < deadline, "cp1 did not register again"
        time.sleep(1)
    waited = lab.kubectl("wait", "--for=condition=Ready", "node/cp1", "--timeout=30s")
    assert waited.returncode == 0, waited.stderr
    # As the real kubelet: its own labels only; kubeadm's control-plane label is gone.
    labels = get("node", "cp1", "-o", "jsonpath={.metadata.labels}")
    assert "kubernetes.io/hostname" in labels and "control-plane" not in labels
    deadline = time.monotonic() + 20
    while "kube-apiserver-cp1" not in get("pods", "-n", "kube-system"):
        assert time.monotonic() < deadline, "the mirror pods did not come back"
        time.sleep(1)


def apply(lab: Lab, tmp_path: Path, text: str) -> None:
    manifest = tmp_path / f"m{abs(hash(text))}.yaml"
    manifest.write_text(text)
    applied = lab.kubectl("apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr


def wait_pod(lab: Lab, namespace: str, selector: str) -> str:
    """The name of the Ready pod matching `selector`, once there is one."""
    deadline = time.monotonic() + 40
    while True:
        out = lab.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o",
                          "jsonpath={range .items[*]}{.metadata.name}={.status.conditions["
                          "?(@.type=='Ready')].status} {end}").stdout.split()
        ready = [item.split("=")[0] for item in out if item.endswith("=True")]
        if ready:
            return ready[0]
        assert time.monotonic() < deadline, out
        time.sleep(0.5)


@pytest.mark.skipif(KUBECTL is None, reason="no kubectl on this machine")
def test_service_and_pod_proxy_through_kubectl_proxy(lab: Lab, tmp_path: Path) -> None:
    headlamp = "/api/v1/namespaces/kube-system/services/http:headlamp:/proxy/"
    dashboard = ("/api/v1/namespaces/kubernetes-dashboard/services/https:kubernetes-dashboard:"
                 "/proxy/")
    with kubectl_proxy(lab.admin) as base:
        code, body, _ = fetch(base + headlamp)
        assert code == 404 and json.loads(body)["message"] == 'services "headlamp" not found'
        apply(lab, tmp_path, HEADLAMP_SERVICE)
        code, body, _ = fetch(base + headlamp)
        assert code == 503, body
        assert json.loads(body)["message"] == 'no endpoints available for service "headlamp"'
        apply(lab, tmp_path, HEADLAMP_DEPLOYMENT)
        apply(lab, tmp_path, DASHBOARD_LIKE)
        pod = wait_pod(lab, "kube-system", "k8s-app=headlamp")
        wait_pod(lab, "kubernetes-dashboard", "k8s-app=kubernetes-dashboard")
        code, body, headers = fetch(base + headlamp + "c/main/settings?x=<b>")
        assert code == 200 and headers["Content-Type"].startswith("text/html"), body
        assert "stand-in" in body and "ghcr.io/headlamp-k8s/headlamp:v0.38.0" in body
        assert f"kube-system/{pod}" in body and ":4466" in body
        assert "GET /c/main/settings?x=&lt;b&gt;" in body and "<b>" not in body
        code, body, _ = fetch(base + dashboard)
        assert code == 200 and "kubernetesui/dashboard:v2.7.0" in body
        assert "https://" in body and ":8443" in body
        # Without the slash after /proxy the real server redirects; so does the stand-in.
        code, _, headers = fetch(base + headlamp.rstrip("/"))
        assert code == 301 and headers["Location"].endswith("/http:headlamp:/proxy/")
        code, body, _ = fetch(base + "/api/v1/namespaces/kube-system/services/http:headlamp:8080"
                              "/proxy/")
        assert code == 503 and "no service port 8080 found" in body
        code, body, _ = fetch(base + f"/api/v1/namespaces/kube-system/pods/http:{pod}:4466"
                              "/proxy/healthz")
        assert code == 200 and "GET /healthz" in body and f"kube-system/{pod}" in body
    via_raw = lab.kubectl("get", "--raw", headlamp)
    assert via_raw.returncode == 0 and "stand-in" in via_raw.stdout


@pytest.mark.skipif(KUBECTL is None, reason="no kubectl on this machine")
def test_node_proxy_reaches_the_kubelet(lab: Lab) -> None:
    def raw(path: str) -> subprocess.CompletedProcess[str]:
        return lab.kubectl("get", "--raw", f"/api/v1/nodes/w2/proxy{path}")

    assert raw("/healthz").stdout == "ok"
    config = json.loads(raw("/configz").stdout)
    assert config["kubeletconfig"]["kind"] == "KubeletConfiguration"
    pods = json.loads(raw("/pods").stdout)
    assert pods["kind"] == "PodList"
    assert {p["spec"]["nodeName"] for p in pods["items"]} == {"w2"}
    missing = raw("/metrics")
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    with kubectl_proxy(lab.admin) as base:
        code, body, _ = fetch(base + "/api/v1/nodes/w2/proxy/metrics")
    assert code == 404 and "stand-in serves only /healthz, /pods" in body
    # The kubelet port refuses anyone but the API server and admins.
    import ssl
    import urllib.request

    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    w2 = lab.workers[1]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"https://127.0.0.1:{w2.kubelet_port}/pods", context=ctx)
    assert refused.value.code == 401


@pytest.mark.skipif(KUBECTL is None, reason="no kubectl on this machine")
def test_logs_are_the_kubelets_record_of_the_container(lab: Lab) -> None:
    logs = lab.kubectl("logs", "-n", "kube-system", "deployment/headlamp")
    assert logs.returncode == 0, logs.stderr
    assert "stand-in" in logs.stdout and "image: ghcr.io/headlamp-k8s/headlamp:v0.38.0" in \
        logs.stdout
    assert 'args: ["-in-cluster", "-plugins-dir=/headlamp/plugins"]' in logs.stdout
    assert "restarts: 0" in logs.stdout
    tail = lab.kubectl("logs", "-n", "kube-system", "deployment/headlamp", "--tail=1",
                       "--timestamps")
    assert len(tail.stdout.splitlines()) == 1 and re.match(r"\d{4}-\d\d-\d\dT", tail.stdout)
    flannel = lab.kubectl("get", "pods", "-n", "kube-flannel", "-o",
                          "jsonpath={.items[0].metadata.name}").stdout
    init = lab.kubectl("logs", "-n", "kube-flannel", flannel, "-c", "install-cni")
    assert "wrote /etc/cni/net.d/10-flannel.conflist (mode 0644)" in init.stdout, init.stderr
    # Several containers and none named: kubectl picks the default and says so.
    main = lab.kubectl("logs", "-n", "kube-flannel", flannel)
    assert main.returncode == 0 and "'kube-flannel'" in main.stdout
    previous = lab.kubectl("logs", "-n", "kube-system", "deployment/headlamp", "--previous")
    assert previous.returncode != 0
    assert "previous terminated container" in previous.stderr
    # -f streams: the record comes at once, and the command waits for more.
    assert KUBECTL is not None
    follow = subprocess.Popen([KUBECTL, "--kubeconfig", str(lab.admin), "logs", "-f", "-n",
                               "kube-system", "deployment/headlamp"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert follow.stdout is not None
        assert "stand-in" in follow.stdout.readline()
        time.sleep(2)
        assert follow.poll() is None
    finally:
        follow.terminate()
        follow.wait(10)


@pytest.mark.skipif(KUBECTL is None, reason="no kubectl on this machine")
def test_exec_attach_and_port_forward_say_the_stand_in_runs_no_container(lab: Lab) -> None:
    for args in (["exec", "deployment/headlamp", "--", "ls"],
                 ["attach", "deployment/headlamp"],
                 ["port-forward", "deployment/headlamp", "18080:4466"]):
        out = lab.kubectl("-n", "kube-system", "--request-timeout=20s", *args)
        assert out.returncode != 0, args
        assert "stand-in" in out.stderr and "no container runs" in out.stderr, out.stderr


def _add_flags(manifest: Path, *flags: str) -> None:
    """Add flags to a static-pod manifest's command, as an admin edits it."""
    import yaml

    pod = yaml.safe_load(manifest.read_text())
    pod["spec"]["containers"][0]["command"] += list(flags)
    manifest.write_text(yaml.safe_dump(pod, sort_keys=False))


def _node_of(lab: Lab, selector: str) -> tuple[str, str]:
    out = lab.kubectl("get", "pods", "-l", selector, "-o",
                      "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName}{end}").stdout
    name, _, node = out.partition(" ")
    return name, node


@pytest.mark.skipif(KUBECTL is None, reason="no kubectl on this machine")
def test_unreachable_node_is_tainted_and_its_pods_evicted(lab: Lab, tmp_path: Path) -> None:
    manifests = lab.cp.root / "etc/kubernetes/manifests"
    pidfile = lab.cp.root / "run/kube-standin/kube-apiserver-standin.pid"
    before = pidfile.read_text()
    # Shorter timings through the real flags; the kubelet restarts the changed static pod.
    # The grace period stays above the kubelets' 10 s status period, as 40 s is by default.
    _add_flags(manifests / "kube-controller-manager.yaml", "--node-monitor-grace-period=12s")
    _add_flags(manifests / "kube-apiserver.yaml", "--default-unreachable-toleration-seconds=3")
    deadline = time.monotonic() + 30
    while pidfile.read_text() == before or lab.kubectl("get", "--raw", "/readyz").returncode:
        assert time.monotonic() < deadline, "the API server was not restarted"
        time.sleep(0.5)
    app = tmp_path / "app.yaml"
    app.write_text("""\
apiVersion: apps/v1
kind: Deployment
metadata: {name: evictee, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: evictee}}
  template:
    metadata: {labels: {app: evictee}}
    spec: {containers: [{name: web, image: registry.example/web:1}]}
""")
    assert lab.kubectl("apply", "-f", str(app)).returncode == 0
    deadline = time.monotonic() + 20
    while not _node_of(lab, "app=evictee")[0]:
        assert time.monotonic() < deadline, "no pod for the Deployment"
        time.sleep(0.5)
    waited = lab.kubectl("wait", "--for=condition=Ready", "pod", "-l", "app=evictee",
                         "--timeout=30s")
    assert waited.returncode == 0, waited.stderr
    first, where = _node_of(lab, "app=evictee")
    tolerations = lab.kubectl("get", "pod", first, "-o", "jsonpath={.spec.tolerations}").stdout
    assert '"tolerationSeconds":3' in tolerations  # DefaultTolerationSeconds, from the flag
    node = next(n for n in (lab.cp, *lab.workers) if n.name == where)
    os.kill(int((node.root / "run/kube-standin/kubelet.pid").read_text()), signal.SIGKILL)
    try:
        deadline = time.monotonic() + 40
        while _node_of(lab, "app=evictee")[0] in ("", first):
            assert time.monotonic() < deadline, "the pod was not evicted"
            time.sleep(1)
        taints = lab.kubectl("get", "node", where, "-o", "jsonpath={.spec.taints}").stdout
        assert '"key":"node.kubernetes.io/unreachable"' in taints and "NoExecute" in taints
        # The daemon pods stay, marked not Ready.
        ready = lab.kubectl("get", "pods", "-n", "kube-flannel", "--field-selector",
                            f"spec.nodeName={where}", "-o", "jsonpath={.items[*].status."
                            "conditions[?(@.type=='Ready')].status}").stdout
        assert ready == "False"
        waited = lab.kubectl("wait", "--for=condition=Ready", "pod", "-l", "app=evictee",
                             "--timeout=30s")
        assert waited.returncode == 0, waited.stderr
        assert _node_of(lab, "app=evictee")[1] != where
    finally:
        node.start_kubelet()
    waited = lab.kubectl("wait", "--for=condition=Ready", f"node/{where}", "--timeout=30s")
    assert waited.returncode == 0, waited.stderr
    deadline = time.monotonic() + 10  # the controller's next round lifts the taints
    while "unreachable" in lab.kubectl("get", "node", where, "-o",
                                       "jsonpath={.spec.taints}").stdout:
        assert time.monotonic() < deadline, "the unreachable taints stayed"
        time.sleep(0.5)
    waited = lab.kubectl("wait", "--for=condition=Ready", "pod", "-n", "kube-flannel", "--all",
                         "--timeout=30s")
    assert waited.returncode == 0, waited.stderr
