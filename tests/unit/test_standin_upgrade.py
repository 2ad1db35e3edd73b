"""kubeadm upgrade and certs on a one-node stand-in cluster, kubeadm of one version at a time.

The node's programs are those of the packages: KUBE_STANDIN_VERSION says which version of
kubeadm (or kubelet) is installed, as each package's launcher does on a node.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import yaml

from kube_standin import pki
from standin_lab import AS_USER, KUBECTL, Node, free_port, install_lib, make_node

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="no kubectl on this machine")
CONFLIST = json.dumps({"name": "test", "cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]})


def kubectl(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run([KUBECTL, "--kubeconfig", str(node.root / "etc/kubernetes/admin.conf"),
                           *args], capture_output=True, text=True, timeout=60)


def server_version(node: Node) -> str:
    out = kubectl(node, "version", "-o", "json")
    return str(json.loads(out.stdout)["serverVersion"]["gitVersion"])


def kubelet_version(node: Node) -> str:
    return kubectl(node, "get", "node", node.name, "-o",
                   "jsonpath={.status.nodeInfo.kubeletVersion}").stdout


@pytest.fixture(scope="module")
def cp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A control plane set up by kubeadm 1.33.5, Ready (a CNI config is in place)."""
    base = tmp_path_factory.mktemp("upgrade")
    sockets: list[socket.socket] = []
    node = make_node(base, "cp1", install_lib(base), sockets)
    node.version = "1.33.5"
    try:
        init = node.kubeadm("init", *AS_USER, "--node-name", "cp1",
                            "--apiserver-advertise-address", "127.0.0.1",
                            f"--apiserver-bind-port={free_port()}")
        assert init.returncode == 0, init.stdout + init.stderr
        (node.root / "etc/cni/net.d").mkdir(parents=True)
        (node.root / "etc/cni/net.d/10-test.conflist").write_text(CONFLIST)
        waited = kubectl(node, "wait", "--for=condition=Ready", "node/cp1", "--timeout=40s")
        assert waited.returncode == 0, waited.stderr
        yield node
    finally:
        node.kubeadm("reset", "-f", timeout=30)
        node.kill_services()
        for s in sockets:
            s.close()


def manifests(node: Node) -> dict[str, str]:
    folder = node.root / "etc/kubernetes/manifests"
    return {f.name: f.read_text() for f in sorted(folder.glob("*.yaml"))}


def test_plan_with_the_clusters_own_kubeadm_is_up_to_date(cp: Node) -> None:
    assert server_version(cp) == "v1.33.5" and kubelet_version(cp) == "v1.33.5"
    plan = cp.kubeadm("upgrade", "plan")
    assert plan.returncode == 0, plan.stderr
    assert "[upgrade/versions] Cluster version: v1.33.5" in plan.stdout
    assert "Awesome, you're up-to-date! Enjoy!" in plan.stdout


def test_plan_offers_the_next_minor(cp: Node) -> None:
    plan = cp.kubeadm("upgrade", "plan", version="1.34.1")
    assert plan.returncode == 0, plan.stderr
    assert "[upgrade/versions] kubeadm version: v1.34.1" in plan.stdout
    assert "Upgrade to the latest stable version:" in plan.stdout
    rows = [line.split() for line in plan.stdout.splitlines()]
    assert ["kubelet", "cp1", "v1.33.5", "v1.34.1"] in rows
    assert ["kube-apiserver", "cp1", "v1.33.5", "v1.34.1"] in rows
    assert ["kube-proxy", "v1.33.5", "v1.34.1"] in rows
    assert "\tkubeadm upgrade apply v1.34.1\n" in plan.stdout


def test_apply_refuses_what_kubeadm_refuses_and_changes_nothing(cp: Node) -> None:
    before = manifests(cp)
    newer = cp.kubeadm("upgrade", "apply", "v1.35.0", "-y", version="1.34.1")
    assert newer.returncode == 1
    assert "[upgrade/version] FATAL: the --version argument is invalid due to these fatal " \
           "errors:" in newer.stderr
    assert '\t- Specified version to upgrade to "v1.35.0" is too high; kubeadm can upgrade ' \
           "only 1 minor version at a time" in newer.stderr
    assert '\t- Specified version to upgrade to "v1.35.0" is at least one minor release higher ' \
           "than the kubeadm minor release (35 > 34). Such an upgrade is not supported" \
           in newer.stderr
    assert "Please fix the misalignments highlighted above and try upgrading again" in \
        newer.stderr
    patch = cp.kubeadm("upgrade", "apply", "v1.34.2", "-y", version="1.34.1")
    assert patch.returncode == 1
    assert 'Specified version to upgrade to "v1.34.2" is higher than the kubeadm version ' \
           '"v1.34.1". Upgrade kubeadm first using the tool you used to install kubeadm' \
           in patch.stderr
    assert "Can be bypassed if you pass the --force flag" in patch.stderr
    unanswered = cp.kubeadm("upgrade", "apply", "v1.34.1", version="1.34.1")
    assert unanswered.returncode == 1
    assert "won't proceed; the user didn't answer (Y|y) in order to continue" in \
        unanswered.stderr
    missing = cp.kubeadm("upgrade", "apply", version="1.34.1")
    assert missing.returncode == 1 and "Required arguments: [version]" in missing.stderr
    assert manifests(cp) == before and server_version(cp) == "v1.33.5"


def test_apply_upgrades_the_control_plane_one_minor(cp: Node) -> None:
    serving = (cp.root / "etc/kubernetes/pki/apiserver.crt").read_bytes()
    applied = cp.kubeadm("upgrade", "apply", "v1.34.1", "--yes", version="1.34.1")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert '[upgrade] SUCCESS! A control plane node of your cluster was upgraded to "v1.34.1".' \
        in applied.stdout
    assert server_version(cp) == "v1.34.1"
    assert "image: registry.k8s.io/kube-apiserver:v1.34.1" in manifests(cp)[
        "kube-apiserver.yaml"]
    backups = list((cp.root / "etc/kubernetes/tmp").glob("kubeadm-backup-manifests-*/*.yaml"))
    assert {b.name for b in backups} == {"kube-apiserver.yaml", "kube-controller-manager.yaml"}
    assert pki.subject_of(serving) == pki.subject_of(
        (cp.root / "etc/kubernetes/pki/apiserver.crt").read_bytes())
    assert serving != (cp.root / "etc/kubernetes/pki/apiserver.crt").read_bytes()  # renewed
    config = kubectl(cp, "get", "cm", "-n", "kube-system", "kubeadm-config", "-o",
                     "jsonpath={.data.ClusterConfiguration}").stdout
    assert yaml.safe_load(config)["kubernetesVersion"] == "v1.34.1"
    proxy = kubectl(cp, "get", "ds", "-n", "kube-system", "kube-proxy", "-o",
                    "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert proxy == "registry.k8s.io/kube-proxy:v1.34.1"
    deadline = time.monotonic() + 20  # the kubelet replaces the mirror pod of the new manifest
    while "v1.34.1" not in kubectl(cp, "get", "pod", "-n", "kube-system", "kube-apiserver-cp1",
                                   "-o", "jsonpath={.spec.containers[0].image}").stdout:
        assert time.monotonic() < deadline, "the mirror pod kept the old image"
        time.sleep(1)
    # The kubelet is upgraded apart, by its package.
    assert kubelet_version(cp) == "v1.33.5"


def test_a_skipped_minor_is_refused(cp: Node) -> None:
    skip = cp.kubeadm("upgrade", "apply", "v1.36.0", "-y", version="1.36.0")
    assert skip.returncode == 1
    assert '\t- Specified version to upgrade to "v1.36.0" is too high; kubeadm can upgrade only ' \
           "1 minor version at a time\n" in skip.stderr
    assert "minor release higher than the kubeadm" not in skip.stderr
    assert server_version(cp) == "v1.34.1"


def test_upgrade_node_then_the_kubelet_package(cp: Node) -> None:
    node = cp.kubeadm("upgrade", "node", version="1.34.1")
    assert node.returncode == 0, node.stdout + node.stderr
    assert "Current and new manifests of kube-apiserver are equal, skipping upgrade" in \
        node.stdout
    assert "[upgrade] The configuration for this node was successfully upgraded!" in node.stdout
    cp.start_kubelet(version="1.34.1")
    deadline = time.monotonic() + 30
    while kubelet_version(cp) != "v1.34.1":
        assert time.monotonic() < deadline, "the kubelet did not report its new version"
        time.sleep(1)


def test_patch_upgrade_in_the_same_minor(cp: Node) -> None:
    plan = cp.kubeadm("upgrade", "plan", version="1.34.2")
    assert "Upgrade to the latest version in the v1.34 series:" in plan.stdout, plan.stdout
    applied = cp.kubeadm("upgrade", "apply", "v1.34.2", "-y", version="1.34.2")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert server_version(cp) == "v1.34.2"
    again = cp.kubeadm("upgrade", "plan", version="1.34.2")
    assert "Awesome, you're up-to-date! Enjoy!" in again.stdout


def test_certs_check_expiration_and_renew(cp: Node) -> None:
    out = cp.kubeadm("certs", "check-expiration")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line.strip()}
    assert rows["admin.conf"][-3:] == ["364d", "ca", "no"]
    assert rows["apiserver"][-3:] == ["364d", "ca", "no"]
    assert rows["ca"][-2:] == ["9y", "no"]
    assert "!MISSING! etcd-peer" in out.stdout and "!MISSING! front-proxy-ca" in out.stdout
    admin = (cp.root / "etc/kubernetes/admin.conf").read_text()
    renewed = cp.kubeadm("certs", "renew", "admin.conf")
    assert renewed.returncode == 0, renewed.stderr
    assert "certificate embedded in the kubeconfig file for the admin to use and for kubeadm " \
           "itself renewed" in renewed.stdout
    assert (cp.root / "etc/kubernetes/admin.conf").read_text() != admin
    assert kubectl(cp, "get", "nodes").returncode == 0  # the renewed admin.conf works
    unknown = cp.kubeadm("certs", "renew", "etcd-peer")
    assert unknown.returncode == 1


def test_token_list_and_delete(cp: Node) -> None:
    created = cp.kubeadm("token", "create", "--ttl", "2h")
    token = created.stdout.strip()
    listed = cp.kubeadm("token", "list")
    row = next(line.split() for line in listed.stdout.splitlines() if line.startswith(token))
    assert row[1] in ("1h", "2h") and row[3] == "authentication,signing"  # 1h59m59s or 2h
    bad = cp.kubeadm("token", "delete", "NOT-A-TOKEN")
    assert bad.returncode == 1 and "didn't match pattern" in bad.stderr
    deleted = cp.kubeadm("token", "delete", token.split(".")[0])
    assert deleted.returncode == 0
    assert f'bootstrap token "{token.split(".")[0]}" deleted' in deleted.stdout
    assert token not in cp.kubeadm("token", "list").stdout
