"""The Kubernetes stand-in on a 3-node sandbox, driven only by shell commands on the nodes.

Install containerd from Debian and kubeadm/kubelet/kubectl 1.33 from the served, signed
repository; init, join (also with a wrong token and a wrong hash), kubectl from this machine, a
DaemonSet shaped like current flannel making the nodes Ready, a TokenRequest token, reset and
join again, a deleted node registering again, `kubectl proxy` to services, logs, exec and
port-forward, a node whose kubelet stops going unreachable and its pods evicted, and last the
upgrade to 1.34 and then to its next patch release with kubeadm and apt.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from kube_standin import pki
from manifests import (
    DASHBOARD_LIKE,
    FLANNEL_INSTALL_CONF,
    HEADLAMP_DEPLOYMENT,
    HEADLAMP_SERVICE,
)
from pifleet.sandbox import Sandbox
from pifleet.sandbox.standin import repo_dir
from standin_lab import fetch, kubectl_proxy

pytestmark = pytest.mark.sandbox
MINOR = "1.33"  # the cluster starts one minor behind the fleet's default, to be upgraded
KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
SSHRun = Callable[[str, str], tuple[int, str, str]]
# The apt proxy is shared by every sandbox on the machine and restarts when one starts: retry
# apt steps a few times rather than fail on a refused connection.
APT = "DEBIAN_FRONTEND=noninteractive apt-get -q -o Acquire::Retries=3"
RETRY = "for i in 1 2 3 4 5; do {} && break; sleep 5; done && {}"



def sudo(command: str) -> str:
    """A root shell command line for the sandbox user (sudo asks for the password)."""
    return f"echo hypriot | sudo -S -p '' sh -c {shlex.quote(command)}"


@pytest.fixture(scope="module")
def cluster(sandbox: Sandbox, node_ssh: SSHRun, tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, object]:
    """Nodes with containerd and the stand-in packages installed, `kubeadm init` done."""
    # `sandbox up` built the repository where its package server serves it.
    assert (repo_dir(sandbox.packages_dir, MINOR) / "InRelease").exists()
    fleet = yaml.safe_load(Path(sandbox.fleet_path).read_text())
    assert fleet["kubernetes"]["version"] == "1.34"
    repo = fleet["kubernetes"]["package_repository"].format(minor=MINOR)
    key = fleet["kubernetes"]["package_key_url"].format(minor=MINOR)
    apt, retry = APT, RETRY
    install = " && ".join([
        "sysctl -qw net.ipv4.ip_forward=1",
        retry.format(f"{apt} update", f"{apt} update"),
        retry.format(f"{apt} -y install containerd", f"{apt} -y install containerd"),
        "mkdir -p -m 755 /etc/apt/keyrings",
        f"curl -fsSL {shlex.quote(key)} | gpg --batch --yes --dearmor -o {KEYRING}",
        f"echo 'deb [signed-by={KEYRING}] {repo} /' > /etc/apt/sources.list.d/kubernetes.list",
        retry.format(f"{apt} update", f"{apt} update"),
        retry.format(f"{apt} -y install kubelet kubeadm kubectl",
                     f"{apt} -y install kubelet kubeadm kubectl"),
        "apt-mark hold kubelet kubeadm kubectl",
    ])

    def prepare(address: str) -> tuple[int, str, str]:
        return node_ssh(address, sudo(install))

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(prepare, [n.address for n in sandbox.nodes]))
    for node, (status, out, err) in zip(sandbox.nodes, results, strict=True):
        assert status == 0, f"{node.name}: {out[-2000:]}\n{err[-2000:]}"
    cp = sandbox.nodes[0]
    status, out, err = node_ssh(cp.address, sudo("kubeadm init --pod-network-cidr "
                                                 "10.244.0.0/16"))
    assert status == 0, out + err
    status, admin, _ = node_ssh(cp.address, sudo("cat /etc/kubernetes/admin.conf"))
    assert status == 0
    kubeconfig = tmp_path_factory.mktemp("kube") / "admin.conf"
    kubeconfig.touch(mode=0o600)
    kubeconfig.write_text(admin)
    return {"init": out, "kubeconfig": kubeconfig}


def kubectl(cluster: dict[str, object], *args: str,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    """The machine's real kubectl with the cluster's admin.conf."""
    tool = shutil.which("kubectl")
    if tool is None:
        pytest.skip("no kubectl on this machine")
    result = subprocess.run([tool, "--kubeconfig", str(cluster["kubeconfig"]), *args],
                            capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def join_command(sandbox: Sandbox, node_ssh: SSHRun) -> str:
    status, out, err = node_ssh(sandbox.nodes[0].address,
                                sudo("kubeadm token create --print-join-command"))
    assert status == 0, err
    assert out.startswith("kubeadm join ")
    return out.strip()


def node_states(cluster: dict[str, object]) -> dict[str, str]:
    out = kubectl(cluster, "get", "nodes", "--no-headers").stdout
    return {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}


def test_packages_come_from_the_signed_repository(sandbox: Sandbox, node_ssh: SSHRun,
                                                  cluster: dict[str, object]) -> None:
    status, out, _ = node_ssh(sandbox.nodes[1].address,
                              "apt-cache policy kubeadm; kubeadm version -o short; "
                              "apt-mark showhold")
    assert status == 0
    assert "Installed: 1.33.5-1.1" in out and ":8080/core:/stable:/v1.33/deb" in out
    assert "v1.33.5" in out.split()
    assert {"kubeadm", "kubelet", "kubectl"} <= set(out.split())


def test_init_prints_join_command_with_the_real_ca_hash(sandbox: Sandbox, node_ssh: SSHRun,
                                                        cluster: dict[str, object]) -> None:
    out = str(cluster["init"])
    assert "Your Kubernetes control-plane has initialized successfully!" in out
    assert "stand-in" in out
    m = re.search(r"kubeadm join (\S+) --token ([a-z0-9]{6}\.[a-z0-9]{16}) \\\n\s*"
                  r"--discovery-token-ca-cert-hash sha256:([0-9a-f]{64})", out)
    assert m, out
    assert m.group(1) == f"{sandbox.nodes[0].address}:6443"
    status, ca, _ = node_ssh(sandbox.nodes[0].address, "cat /etc/kubernetes/pki/ca.crt")
    assert status == 0
    # Independently, with openssl, as the kubeadm documentation shows.
    digest = subprocess.run(
        "openssl x509 -pubkey -noout | openssl rsa -pubin -outform der 2>/dev/null "
        "| openssl dgst -sha256 -hex | sed 's/^.* //'", shell=True, input=ca,
        capture_output=True, text=True, check=True).stdout.strip()
    assert m.group(3) == digest == pki.ca_hash(ca.encode())[7:]


def test_second_init_fails_preflight(sandbox: Sandbox, node_ssh: SSHRun,
                                     cluster: dict[str, object]) -> None:
    status, _, err = node_ssh(sandbox.nodes[0].address, sudo("kubeadm init"))
    assert status == 1
    assert "[ERROR FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml]" in err
    assert "[ERROR Port-6443]: Port 6443 is in use" in err
    assert "[ERROR Port-10250]: Port 10250 is in use" in err


def test_wrong_hash_and_wrong_token_fail(sandbox: Sandbox, node_ssh: SSHRun,
                                         cluster: dict[str, object]) -> None:
    join = join_command(sandbox, node_ssh)
    worker = sandbox.nodes[1].address
    bad_hash = re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "1" * 64, join)
    started = time.monotonic()
    status, _, err = node_ssh(worker, sudo(bad_hash))
    assert status == 1 and time.monotonic() - started < 20, err
    assert "none of the public keys" in err
    bad_token = re.sub(r"--token \S+", "--token abcdef.0123456789abcdef", join)
    # The real kubeadm retries discovery for minutes; shorten it, it must still never succeed.
    status, _, err = node_ssh(worker, sudo(f"KUBE_STANDIN_DISCOVERY_TIMEOUT=8 {bad_token}"))
    assert status == 1
    assert 'token id "abcdef" is invalid for this cluster or it has expired' in err
    status, _, _ = node_ssh(worker, "test -e /etc/kubernetes/kubelet.conf")
    assert status != 0


def test_join_and_kubectl_from_this_machine_lists_three_notready(
        sandbox: Sandbox, node_ssh: SSHRun, cluster: dict[str, object]) -> None:
    join = join_command(sandbox, node_ssh)
    for node in sandbox.nodes[1:]:
        status, out, err = node_ssh(node.address, sudo(join))
        assert status == 0, out + err
        assert "This node has joined the cluster:" in out
    assert node_states(cluster) == dict.fromkeys(sandbox.node_names, "NotReady")
    wide = kubectl(cluster, "get", "nodes", "-o", "json").stdout
    addresses = {i["metadata"]["name"]: i["status"]["addresses"][0]["address"]
                 for i in json.loads(wide)["items"]}
    assert addresses == {n.name: n.address for n in sandbox.nodes}
    ready = json.loads(wide)["items"][0]["status"]["conditions"]
    message = next(c["message"] for c in ready if c["type"] == "Ready")
    assert "network not ready" in message and "reason:NetworkPluginNotReady" in message


def test_current_flannel_daemonset_makes_nodes_ready(sandbox: Sandbox, node_ssh: SSHRun,
                                                     cluster: dict[str, object],
                                                     tmp_path: Path) -> None:
    """Shaped like flannel v0.28.6 and later: the config is installed by install-conf."""
    manifest = tmp_path / "flannel.yaml"
    manifest.write_text(FLANNEL_INSTALL_CONF)
    kubectl(cluster, "apply", "-f", str(manifest))
    kubectl(cluster, "wait", "--for=condition=Ready", "node", "--all", "--timeout=90s")
    assert node_states(cluster) == dict.fromkeys(sandbox.node_names, "Ready")
    for node in sandbox.nodes:
        status, out, err = node_ssh(node.address, sudo("cat /etc/cni/net.d/10-flannel.conflist"))
        assert status == 0 and '"type": "flannel"' in out, err
    kubectl(cluster, "-n", "kube-system", "rollout", "status", "deployment/coredns",
            "--timeout=60s")
    # Debian's kubectl on the control plane sees the same cluster.
    status, out, err = node_ssh(sandbox.nodes[0].address,
                                sudo("kubectl --kubeconfig /etc/kubernetes/admin.conf "
                                     "get nodes"))
    assert status == 0, err
    assert out.count(" Ready ") == len(sandbox.nodes)


def test_a_joined_node_has_node_rights_only(sandbox: Sandbox, node_ssh: SSHRun,
                                            cluster: dict[str, object]) -> None:
    """The certificate `kubeadm join` obtained with the join token, used by Debian's kubectl on
    the node: its own Node yes, kube-system secrets and cluster-admin no."""
    worker = sandbox.nodes[1]
    own = "kubectl --kubeconfig /etc/kubernetes/kubelet.conf"
    status, out, err = node_ssh(worker.address, sudo(f"{own} get node {worker.name}"))
    assert status == 0 and worker.name in out, err
    for command in ("get secrets -n kube-system",
                    f"create clusterrolebinding pwn --clusterrole=cluster-admin "
                    f"--user=system:node:{worker.name}",
                    f"label node {sandbox.nodes[0].name} owned=yes"):
        status, out, err = node_ssh(worker.address, sudo(f"{own} {command}"))
        assert status != 0 and "forbidden" in err.lower(), (command, out, err)


def test_token_request_token_authenticates_kubectl(cluster: dict[str, object],
                                                   tmp_path: Path) -> None:
    kubectl(cluster, "create", "serviceaccount", "viewer", "-n", "default")
    kubectl(cluster, "create", "clusterrolebinding", "viewer", "--clusterrole=view",
            "--serviceaccount=default:viewer")
    token = kubectl(cluster, "create", "token", "viewer", "-n", "default",
                    "--duration=10m").stdout.strip()
    creds = pki.read_kubeconfig(Path(str(cluster["kubeconfig"])).read_text())
    ca = tmp_path / "ca.crt"
    ca.write_bytes(creds.ca)
    tool = shutil.which("kubectl")
    assert tool is not None

    def as_viewer(token: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([tool, "--kubeconfig", "/dev/null", "--server", creds.server,
                               "--certificate-authority", str(ca), "--token", token, *args],
                              capture_output=True, text=True, timeout=60)

    result = as_viewer(token, "get", "pods", "-A")
    assert result.returncode == 0, result.stderr
    assert "coredns" in result.stdout
    # The real `view` role reads neither nodes nor secrets.
    for kind in ("nodes", "secrets"):
        denied = as_viewer(token, "get", kind, "-A")
        assert denied.returncode != 0 and "forbidden" in denied.stderr
    refused = as_viewer(token[:-4] + "AAAA", "get", "pods")
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr


def test_api_state_survives_a_restart_of_the_service(sandbox: Sandbox, node_ssh: SSHRun,
                                                     cluster: dict[str, object]) -> None:
    before = kubectl(cluster, "get", "ds", "-n", "kube-flannel", "kube-flannel-ds", "-o",
                     "jsonpath={.metadata.uid}").stdout
    status, _, err = node_ssh(sandbox.nodes[0].address,
                              sudo("systemctl restart kube-apiserver-standin"))
    assert status == 0, err
    deadline = time.monotonic() + 30
    while kubectl(cluster, "get", "--raw", "/readyz", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the API server did not come back"
        time.sleep(1)
    after = kubectl(cluster, "get", "ds", "-n", "kube-flannel", "kube-flannel-ds", "-o",
                    "jsonpath={.metadata.uid}").stdout
    assert before and after == before
    assert node_states(cluster) == dict.fromkeys(sandbox.node_names, "Ready")


def test_reset_then_join_again(sandbox: Sandbox, node_ssh: SSHRun,
                               cluster: dict[str, object]) -> None:
    worker = sandbox.nodes[2]
    status, out, err = node_ssh(worker.address, sudo("kubeadm reset -f"))
    assert status == 0, err
    assert "does not clean CNI configuration" in out
    status, _, _ = node_ssh(worker.address, "test -e /etc/kubernetes/kubelet.conf")
    assert status != 0
    status, _, _ = node_ssh(worker.address, sudo("test -e /etc/cni/net.d/10-flannel.conflist"))
    assert status == 0
    kubectl(cluster, "delete", "node", worker.name)
    status, out, err = node_ssh(worker.address, sudo(join_command(sandbox, node_ssh)))
    assert status == 0, out + err
    kubectl(cluster, "wait", "--for=condition=Ready", f"node/{worker.name}", "--timeout=60s")


def wait_flannel_ready(sandbox: Sandbox, cluster: dict[str, object]) -> None:
    """Until every node has a Ready flannel pod."""
    deadline = time.monotonic() + 60
    while True:
        out = kubectl(cluster, "get", "pods", "-n", "kube-flannel", "-o", "jsonpath={range "
                      ".items[*]}{.spec.nodeName}={.status.conditions[?(@.type=='Ready')]"
                      ".status} {end}").stdout.split()
        if sorted(out) == sorted(f"{n}=True" for n in sandbox.node_names):
            return
        assert time.monotonic() < deadline, out
        time.sleep(2)


def test_deleted_node_registers_again(sandbox: Sandbox, cluster: dict[str, object]) -> None:
    worker = sandbox.nodes[1].name
    uid = kubectl(cluster, "get", "node", worker, "-o", "jsonpath={.metadata.uid}").stdout
    kubectl(cluster, "delete", "node", worker)
    deadline = time.monotonic() + 60
    while kubectl(cluster, "get", "node", worker, "-o", "jsonpath={.metadata.uid}",
                  check=False).stdout in ("", uid):
        assert time.monotonic() < deadline, "the kubelet did not register its node again"
        time.sleep(2)
    kubectl(cluster, "wait", "--for=condition=Ready", f"node/{worker}", "--timeout=60s")
    wait_flannel_ready(sandbox, cluster)


def _ready_pod(cluster: dict[str, object], namespace: str, selector: str) -> str:
    deadline = time.monotonic() + 60
    while True:
        out = kubectl(cluster, "get", "pods", "-n", namespace, "-l", selector, "-o",
                      "jsonpath={range .items[*]}{.metadata.name}={.status.conditions["
                      "?(@.type=='Ready')].status} {end}").stdout.split()
        ready = [item.split("=")[0] for item in out if item.endswith("=True")]
        if ready:
            return ready[0]
        assert time.monotonic() < deadline, out
        time.sleep(2)


def test_kubectl_proxy_to_the_dashboard_and_headlamp_services(
        sandbox: Sandbox, cluster: dict[str, object], tmp_path: Path) -> None:
    headlamp = "/api/v1/namespaces/kube-system/services/http:headlamp:/proxy/"
    dashboard = ("/api/v1/namespaces/kubernetes-dashboard/services/https:kubernetes-dashboard:"
                 "/proxy/")
    for i, text in enumerate((HEADLAMP_SERVICE, DASHBOARD_LIKE)):
        (tmp_path / f"{i}.yaml").write_text(text)
        kubectl(cluster, "apply", "-f", str(tmp_path / f"{i}.yaml"))
    with kubectl_proxy(Path(str(cluster["kubeconfig"]))) as base:
        code, body, _ = fetch(base + headlamp)
        assert code == 503 and 'no endpoints available for service \\"headlamp\\"' in body
        (tmp_path / "headlamp.yaml").write_text(HEADLAMP_DEPLOYMENT)
        kubectl(cluster, "apply", "-f", str(tmp_path / "headlamp.yaml"))
        pod = _ready_pod(cluster, "kube-system", "k8s-app=headlamp")
        _ready_pod(cluster, "kubernetes-dashboard", "k8s-app=kubernetes-dashboard")
        code, body, _ = fetch(base + headlamp)
        assert code == 200 and "stand-in" in body and f"kube-system/{pod}" in body
        assert "ghcr.io/headlamp-k8s/headlamp:v0.38.0" in body
        code, body, _ = fetch(base + dashboard + "#/login")
        assert code == 200 and "kubernetesui/dashboard:v2.7.0" in body and ":8443" in body
        # A node proxy reaches that node's kubelet across the sandbox's bridge.
        code, body, _ = fetch(base + f"/api/v1/nodes/{sandbox.nodes[2].name}/proxy/healthz")
        assert (code, body) == (200, "ok")


def test_logs_exec_and_port_forward_from_this_machine(cluster: dict[str, object]) -> None:
    logs = kubectl(cluster, "logs", "-n", "kube-system", "deployment/headlamp").stdout
    assert "stand-in" in logs and "image: ghcr.io/headlamp-k8s/headlamp:v0.38.0" in logs
    flannel = kubectl(cluster, "get", "pods", "-n", "kube-flannel", "-o",
                      "jsonpath={.items[0].metadata.name}").stdout
    init = kubectl(cluster, "logs", "-n", "kube-flannel", flannel, "-c", "install-cni").stdout
    assert "wrote /etc/cni/net.d/10-flannel.conflist" in init
    for args in (["exec", "deployment/headlamp", "--", "ls"],
                 ["port-forward", "service/headlamp", "18080:80"]):
        out = kubectl(cluster, "-n", "kube-system", "--request-timeout=30s", *args, check=False)
        assert out.returncode != 0
        assert "stand-in" in out.stderr and "no container runs" in out.stderr, out.stderr


EVICTEE = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: evictee, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: evictee}}
  template:
    metadata: {labels: {app: evictee}}
    spec: {containers: [{name: web, image: registry.example/web:1}]}
"""


def _edit_manifest(node_ssh: SSHRun, address: str, name: str, *flags: str) -> None:
    """Add flags to a static-pod manifest on the control plane, as an admin would."""
    script = (f"import yaml; f='/etc/kubernetes/manifests/{name}'; d=yaml.safe_load(open(f)); "
              f"d['spec']['containers'][0]['command'] += {list(flags)!r}; "
              "open(f, 'w').write(yaml.safe_dump(d))")
    status, _, err = node_ssh(address, sudo(f"python3 -c {shlex.quote(script)}"))
    assert status == 0, err


def _pod_of(cluster: dict[str, object], selector: str) -> tuple[str, str]:
    out = kubectl(cluster, "get", "pods", "-l", selector, "-o", "jsonpath={range .items[*]}"
                  "{.metadata.name} {.spec.nodeName} {.status.phase}{end}").stdout.split()
    return (out[0], out[1]) if len(out) == 3 and out[2] == "Running" else ("", "")


def test_stopped_kubelet_makes_the_node_unreachable_and_its_pods_evicted(
        sandbox: Sandbox, node_ssh: SSHRun, cluster: dict[str, object], tmp_path: Path) -> None:
    cp = sandbox.nodes[0].address
    # Short timings through the real flags: the kubelet restarts the changed static pods. The
    # grace period stays above the kubelets' 10 s status period, as 40 s is by default.
    _edit_manifest(node_ssh, cp, "kube-controller-manager.yaml",
                   "--node-monitor-grace-period=20s")
    _edit_manifest(node_ssh, cp, "kube-apiserver.yaml",
                   "--default-unreachable-toleration-seconds=5")
    deadline = time.monotonic() + 60
    while "--default-unreachable-toleration-seconds=5" not in kubectl(
            cluster, "get", "pod", "-n", "kube-system", f"kube-apiserver-{sandbox.nodes[0].name}",
            "-o", "jsonpath={.spec.containers[0].command}", check=False).stdout:
        assert time.monotonic() < deadline, "the kubelet did not restart the API server"
        time.sleep(2)
    manifest = tmp_path / "evictee.yaml"
    manifest.write_text(EVICTEE)
    kubectl(cluster, "apply", "-f", str(manifest))
    deadline = time.monotonic() + 60
    while not _pod_of(cluster, "app=evictee")[0]:
        assert time.monotonic() < deadline, "the Deployment's pod did not run"
        time.sleep(2)
    first, where = _pod_of(cluster, "app=evictee")
    tolerations = kubectl(cluster, "get", "pod", first, "-o",
                          "jsonpath={.spec.tolerations}").stdout
    assert '"tolerationSeconds":5' in tolerations
    worker = next(n for n in sandbox.nodes if n.name == where)
    status, _, err = node_ssh(worker.address, sudo("systemctl stop kubelet"))
    assert status == 0, err
    try:
        jsonpath = '{.status.conditions[?(@.type=="Ready")].status}'
        deadline = time.monotonic() + 60
        while kubectl(cluster, "get", "node", where, "-o", f"jsonpath={jsonpath}"
                      ).stdout != "Unknown":
            assert time.monotonic() < deadline, "the node did not go Unknown"
            time.sleep(2)
        assert node_states(cluster)[where] == "NotReady"
        reason = kubectl(cluster, "get", "node", where, "-o",
                         'jsonpath={.status.conditions[?(@.type=="Ready")].message}').stdout
        assert reason == "Kubelet stopped posting node status."
        taints = kubectl(cluster, "get", "node", where, "-o", "jsonpath={.spec.taints}").stdout
        assert '"effect":"NoExecute","key":"node.kubernetes.io/unreachable"' in taints
        deadline = time.monotonic() + 60
        while _pod_of(cluster, "app=evictee")[0] in ("", first):
            assert time.monotonic() < deadline, "the pod was not evicted"
            time.sleep(2)
        assert _pod_of(cluster, "app=evictee")[1] not in ("", where)
        # The flannel pod tolerates the taint for ever: it stays, marked not Ready.
        ready = kubectl(cluster, "get", "pods", "-n", "kube-flannel", "--field-selector",
                        f"spec.nodeName={where}", "-o", "jsonpath={.items[*].status."
                        "conditions[?(@.type=='Ready')].status}").stdout
        assert ready == "False"
    finally:
        status, _, err = node_ssh(worker.address, sudo("systemctl start kubelet"))
        assert status == 0, err
    kubectl(cluster, "wait", "--for=condition=Ready", f"node/{where}", "--timeout=60s")
    wait_flannel_ready(sandbox, cluster)
    kubectl(cluster, "delete", "-f", str(manifest))


def _on(node_ssh: SSHRun, address: str, command: str) -> str:
    status, out, err = node_ssh(address, sudo(command))
    assert status == 0, f"{command}: {out[-2000:]}\n{err[-2000:]}"
    return out


def _install(node_ssh: SSHRun, address: str, *packages: str) -> None:
    """Upgrade held packages as the Kubernetes documentation does: unhold, install, hold."""
    names = " ".join(p.split("=")[0] for p in packages)
    install = f"{APT} -y install {' '.join(packages)}"
    _on(node_ssh, address, f"apt-mark unhold {names} && " + RETRY.format(install, install) +
        f" && apt-mark hold {names}")


def _kubelet_versions(cluster: dict[str, object]) -> dict[str, str]:
    out = kubectl(cluster, "get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}="
                  "{.status.nodeInfo.kubeletVersion} {end}").stdout.split()
    return dict(item.split("=") for item in out)


def _wait_kubelet(cluster: dict[str, object], node: str, version: str) -> None:
    deadline = time.monotonic() + 60
    while _kubelet_versions(cluster).get(node) != version:
        assert time.monotonic() < deadline, _kubelet_versions(cluster)
        time.sleep(2)


def test_kubeadm_upgrade_to_the_next_minor_then_a_patch(
        sandbox: Sandbox, node_ssh: SSHRun, cluster: dict[str, object]) -> None:
    fleet = yaml.safe_load(Path(sandbox.fleet_path).read_text())
    repo = fleet["kubernetes"]["package_repository"].format(minor="1.34")
    cp, worker = sandbox.nodes[0], sandbox.nodes[1]
    update = f"{APT} update"
    next_minor = (f"echo 'deb [signed-by={KEYRING}] {repo} /' > "
                  "/etc/apt/sources.list.d/kubernetes.list && " + RETRY.format(update, update))
    _on(node_ssh, cp.address, next_minor)
    _install(node_ssh, cp.address, "kubeadm=1.34.1-1.1")
    plan = _on(node_ssh, cp.address, "kubeadm upgrade plan")
    assert "[upgrade/versions] Cluster version: v1.33.5" in plan
    assert "\tkubeadm upgrade apply v1.34.1\n" in plan
    status, _, err = node_ssh(cp.address, sudo("kubeadm upgrade apply v1.35.0 -y"))
    assert status == 1
    assert 'Specified version to upgrade to "v1.35.0" is at least one minor release higher ' \
           "than the kubeadm minor release (35 > 34). Such an upgrade is not supported" in err
    applied = _on(node_ssh, cp.address, "kubeadm upgrade apply v1.34.1 -y")
    assert '[upgrade] SUCCESS! A control plane node of your cluster was upgraded to "v1.34.1".' \
        in applied
    version = json.loads(kubectl(cluster, "version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.34.1"
    # Then the kubelets, each with its package: the control plane, and one worker after
    # `kubeadm upgrade node`. The third stays at 1.33, a skew the real cluster allows too.
    _install(node_ssh, cp.address, "kubelet=1.34.1-1.1", "kubectl=1.34.1-1.1")
    _wait_kubelet(cluster, cp.name, "v1.34.1")
    _on(node_ssh, worker.address, next_minor)
    _install(node_ssh, worker.address, "kubeadm=1.34.1-1.1")
    node = _on(node_ssh, worker.address, "kubeadm upgrade node")
    assert "[upgrade] The configuration for this node was successfully upgraded!" in node
    _install(node_ssh, worker.address, "kubelet=1.34.1-1.1")
    _wait_kubelet(cluster, worker.name, "v1.34.1")
    assert _kubelet_versions(cluster)[sandbox.nodes[2].name] == "v1.33.5"
    # A patch release of the same minor.
    _install(node_ssh, cp.address, "kubeadm=1.34.2-1.1")
    assert "Upgrade to the latest version in the v1.34 series:" in _on(
        node_ssh, cp.address, "kubeadm upgrade plan")
    _on(node_ssh, cp.address, "kubeadm upgrade apply v1.34.2 -y")
    version = json.loads(kubectl(cluster, "version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.34.2"
    expiry = _on(node_ssh, cp.address, "kubeadm certs check-expiration")
    assert re.search(r"^apiserver\s+\w{3} \d\d, \d{4} .* 364d\s+ca\s+no$", expiry, re.M), expiry
    kubectl(cluster, "wait", "--for=condition=Ready", "node", "--all", "--timeout=60s")
