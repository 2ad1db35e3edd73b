"""The API server stand-in on 127.0.0.1, driven by the machine's real kubectl."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kube_standin import controllers, pki
from kube_standin.store import Store
from manifests import FLANNEL_LIKE
from standin_cluster import KUBECTL, Cluster, running_cluster

needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="no kubectl on this machine")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The stand-in with kubeadm's admin: `kubernetes-admin` in `kubeadm:cluster-admins`."""
    with running_cluster(tmp_path_factory.mktemp("apiserver")) as c:
        admin = pki.issue(c.ca, "kubernetes-admin", orgs=["kubeadm:cluster-admins"],
                          client=True)
        kubeadm_admin = c.dir / "kubeadm-admin.conf"
        kubeadm_admin.write_text(pki.kubeconfig(f"https://127.0.0.1:{c.port}", c.ca.cert,
                                                "kubernetes-admin", cert=admin.cert,
                                                key=admin.key))
        # kubeadm binds kubeadm:cluster-admins to cluster-admin; without it the admin is nobody.
        denied = c.kubectl("get", "namespaces", kubeconfig=kubeadm_admin, check=False)
        assert denied.returncode != 0 and "forbidden" in denied.stderr
        status, _ = c.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
            "metadata": {"name": "kubeadm:cluster-admins"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},
            "subjects": [{"kind": "Group", "name": "kubeadm:cluster-admins"}]})
        assert status == 201
        c.admin = kubeadm_admin
        yield c


def _node(name: str, ready: bool) -> dict[str, object]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux"}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "lastHeartbeatTime": now, "lastTransitionTime": now,
                                       "reason": "KubeletReady" if ready else "KubeletNotReady"}],
                       "nodeInfo": {"kubeletVersion": "v1.34.1"}}}


def test_version_keeps_kubectl_shape_and_says_stand_in(cluster: Cluster) -> None:
    status, doc = cluster.request("GET", "/version", cert=False)
    assert status == 200
    assert doc["gitVersion"] == "v1.34.1"
    assert "standin" in str(doc["platform"]) and "stand-in" in str(doc["goVersion"])


def test_anonymous_and_bad_tokens_are_refused_with_status(cluster: Cluster) -> None:
    status, doc = cluster.request("GET", "/api", cert=False)
    assert (status, doc["kind"], doc["reason"]) == (403, "Status", "Forbidden")
    assert 'User "system:anonymous"' in str(doc["message"])
    status, doc = cluster.request("GET", "/api/v1/nodes", cert=False, token="not-a-token")
    assert (status, doc["reason"], doc["code"]) == (401, "Unauthorized", 401)
    status, doc = cluster.request("GET", "/api/v1/namespaces/default/configmaps/nope")
    assert (status, doc["reason"], doc["message"]) == (404, "NotFound",
                                                       'configmaps "nope" not found')


@needs_kubectl
def test_kubectl_sees_nodes_with_status(cluster: Cluster) -> None:
    for name, ready in (("n1", True), ("n2", False)):
        status, _ = cluster.request("POST", "/api/v1/nodes", _node(name, ready))
        assert status == 201
    out = cluster.kubectl("get", "nodes").stdout.splitlines()
    rows = {line.split()[0]: line.split()[1] for line in out[1:]}
    assert out[0].split()[:3] == ["NAME", "STATUS", "ROLES"]
    assert rows == {"n1": "Ready", "n2": "NotReady"}
    wide = cluster.kubectl("get", "nodes", "-o", "json").stdout
    assert {i["metadata"]["name"] for i in json.loads(wide)["items"]} == {"n1", "n2"}


@needs_kubectl
def test_kubectl_apply_client_and_server_side(cluster: Cluster, tmp_path: Path) -> None:
    manifest = tmp_path / "flannel.yaml"
    manifest.write_text(FLANNEL_LIKE)
    out = cluster.kubectl("apply", "-f", str(manifest)).stdout
    assert "daemonset.apps/kube-flannel-ds created" in out
    assert "unchanged" in cluster.kubectl("apply", "-f", str(manifest)).stdout
    manifest.write_text(FLANNEL_LIKE.replace("--kube-subnet-mgr]",
                                             "--kube-subnet-mgr, --iface=eth0]"))
    assert "daemonset.apps/kube-flannel-ds configured" in cluster.kubectl(
        "apply", "-f", str(manifest)).stdout
    ds = json.loads(cluster.kubectl("get", "ds", "-n", "kube-flannel", "kube-flannel-ds",
                                    "-o", "json").stdout)
    assert ds["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "--iface=eth0"
    assert ds["metadata"]["generation"] == 2
    # Typed clients (lightkube's models) need the integer status fields from the start.
    assert {"currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
            "numberReady"} <= set(ds["status"])
    out = cluster.kubectl("apply", "--server-side", "--field-manager=pifleet", "-f",
                          str(manifest)).stdout
    assert "serverside-applied" in out
    ds = json.loads(cluster.kubectl("get", "ds", "-n", "kube-flannel", "kube-flannel-ds",
                                    "-o", "json", "--show-managed-fields").stdout)
    managers = [m["manager"] for m in ds["metadata"]["managedFields"]]
    # kubectl moves what its client-side apply owned to the server-side manager (with a JSON
    # patch of managedFields), as against a real server.
    assert "pifleet" in managers and "kubectl-client-side-apply" not in managers
    # A change to a field another manager owns conflicts, until forced.
    manifest.write_text(FLANNEL_LIKE.replace("--kube-subnet-mgr]",
                                             "--kube-subnet-mgr, --iface=eth1]"))
    clash = cluster.kubectl("apply", "--server-side", "--field-manager=someone-else", "-f",
                            str(manifest), check=False)
    assert clash.returncode != 0
    assert 'conflict with "pifleet"' in clash.stderr
    assert '.spec.template.spec.containers[name="kube-flannel"].args' in clash.stderr
    cluster.kubectl("apply", "--server-side", "--field-manager=someone-else",
                    "--force-conflicts", "-f", str(manifest))
    ds = json.loads(cluster.kubectl("get", "ds", "-n", "kube-flannel", "kube-flannel-ds",
                                    "-o", "json").stdout)
    assert ds["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "--iface=eth1"


@needs_kubectl
def test_token_request_token_authenticates_kubectl(cluster: Cluster, tmp_path: Path) -> None:
    status, _ = cluster.request("POST", "/api/v1/namespaces/default/serviceaccounts",
                                {"metadata": {"name": "viewer"}})
    assert status == 201
    status, doc = cluster.request("POST", "/api/v1/namespaces/default/serviceaccounts/viewer/"
                                  "token", {"spec": {"expirationSeconds": 3600}})
    assert status == 201 and doc["kind"] == "TokenRequest"
    token = str(doc["status"]["token"])  # type: ignore[index]
    kubeconfig = tmp_path / "token.conf"
    kubeconfig.write_text(pki.kubeconfig(f"https://127.0.0.1:{cluster.port}", cluster.ca.cert,
                                         "viewer", token=token))
    denied = cluster.kubectl("get", "nodes", kubeconfig=kubeconfig, check=False)
    assert denied.returncode != 0
    assert 'User "system:serviceaccount:default:viewer" cannot list resource "nodes"' in \
        denied.stderr
    binding = tmp_path / "binding.json"
    binding.write_text(json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "viewer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": "default"}]}))
    cluster.kubectl("apply", "-f", str(binding))
    assert "kube-system" in cluster.kubectl("get", "namespaces", kubeconfig=kubeconfig).stdout
    # The real `view` reads neither nodes nor secrets.
    for kind in ("nodes", "secrets"):
        denied = cluster.kubectl("get", kind, "-A", kubeconfig=kubeconfig, check=False)
        assert denied.returncode != 0 and "forbidden" in denied.stderr
    # Deleting the ServiceAccount revokes its tokens.
    cluster.kubectl("delete", "serviceaccount", "viewer", "-n", "default")
    gone = cluster.kubectl("get", "namespaces", kubeconfig=kubeconfig, check=False)
    assert gone.returncode != 0 and "Unauthorized" in gone.stderr


@needs_kubectl
def test_kubectl_watch_sees_changes(cluster: Cluster) -> None:
    assert KUBECTL is not None
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(cluster.admin), "get", "nodes",
                             "--watch", "--output-watch-events"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        status, _ = cluster.request("POST", "/api/v1/nodes", _node("n3", False))
        assert status == 201
        time.sleep(1.5)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    events = [line.split()[:3] for line in out.splitlines()[1:]]
    assert ["ADDED", "n3", "NotReady"] in events, out + err


def test_merge_patch_status_and_conflict(cluster: Cluster) -> None:
    status, doc = cluster.request("PATCH", "/api/v1/nodes/n2/status",
                                  {"status": {"nodeInfo": {"osImage": "Debian"}}},
                                  content_type="application/merge-patch+json")
    assert status == 200 and doc["status"]["nodeInfo"]["osImage"] == "Debian"  # type: ignore[index]
    stale = dict(doc)
    stale["metadata"] = dict(doc["metadata"], resourceVersion="1")  # type: ignore[arg-type]
    status, err = cluster.request("PUT", "/api/v1/nodes/n2", stale)
    assert (status, err["reason"]) == (409, "Conflict")


def test_node_goes_unknown_after_grace_and_state_survives_restart(cluster: Cluster) -> None:
    store = Store(None)
    old = _node("quiet", True)
    old["status"]["conditions"][0]["lastHeartbeatTime"] = "2020-01-01T00:00:00Z"  # type: ignore[index]
    kinds = controllers.NODES
    store.create(kinds, old)
    controllers.nodes(store, "10.244.0.0/16", grace=40)
    node = store.get(kinds, "", "quiet")
    assert node["status"]["conditions"][0]["status"] == "Unknown"
    assert node["status"]["conditions"][0]["message"] == "Kubelet stopped posting node status."
    assert {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"} in \
        node["spec"]["taints"]
    assert node["spec"]["podCIDR"] == "10.244.0.0/24"
    # The running server's state file reloads with the same objects and versions.
    reloaded = Store(cluster.state)
    names = {n["metadata"]["name"] for n in reloaded.list(kinds)[0]}
    assert {"n1", "n2"} <= names


@needs_kubectl
def test_kubectl_create_commands_send_protobuf_that_is_understood(cluster: Cluster) -> None:
    """`kubectl create ...` encodes built-in kinds as protobuf; the stand-in decodes them."""
    cluster.kubectl("create", "namespace", "proto")
    cluster.kubectl("create", "serviceaccount", "robot", "-n", "proto")
    cluster.kubectl("create", "configmap", "cm", "--from-literal=k=v", "-n", "proto")
    cluster.kubectl("create", "secret", "generic", "s", "--from-literal=k=secret", "-n", "proto")
    cluster.kubectl("create", "clusterrolebinding", "robot-view", "--clusterrole=view",
                    "--serviceaccount=proto:robot", "--group=people")
    status, secret = cluster.request("GET", "/api/v1/namespaces/proto/secrets/s")
    assert status == 200 and secret["data"] == {"k": "c2VjcmV0"}
    status, binding = cluster.request(
        "GET", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/robot-view")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": "view"}
    assert {"kind": "Group", "name": "people", "apiGroup": "rbac.authorization.k8s.io"} in \
        binding["subjects"]  # type: ignore[operator]
    token = cluster.kubectl("create", "token", "robot", "-n", "proto",
                            "--duration=15m").stdout.strip()
    out = subprocess.run([str(KUBECTL), "--kubeconfig", "/dev/null", "--server",
                          f"https://127.0.0.1:{cluster.port}", "--certificate-authority",
                          str(cluster.dir / "ca.crt"), "--token", token, "get", "ns", "proto"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "proto" in out.stdout, out.stderr
    other = cluster.kubectl("create", "token", "robot", "-n", "proto",
                            "--audience=elsewhere").stdout.strip()
    out = subprocess.run([str(KUBECTL), "--kubeconfig", "/dev/null", "--server",
                          f"https://127.0.0.1:{cluster.port}", "--certificate-authority",
                          str(cluster.dir / "ca.crt"), "--token", other, "get", "ns"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "Unauthorized" in out.stderr
    cluster.kubectl("create", "deployment", "d", "--image=x:1", "-n", "proto")
    status, deployment = cluster.request("GET", "/apis/apps/v1/namespaces/proto/deployments/d")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "x:1"  # type: ignore[index]


@needs_kubectl
def test_service_account_token_secret_is_filled_and_revocable(cluster: Cluster,
                                                              tmp_path: Path) -> None:
    """The legacy token Secret a dashboard manifest asks for gets a working token."""
    objects = tmp_path / "dashboard-admin.yaml"
    objects.write_text("""\
apiVersion: v1
kind: ServiceAccount
metadata: {name: dash, namespace: default}
---
apiVersion: v1
kind: Secret
type: kubernetes.io/service-account-token
metadata:
  name: dash-token
  namespace: default
  annotations: {kubernetes.io/service-account.name: dash}
""")
    cluster.kubectl("apply", "-f", str(objects))
    token = ""
    for _ in range(30):
        token = cluster.kubectl("get", "secret", "dash-token", "-o",
                                "jsonpath={.data.token}").stdout
        if token:
            break
        time.sleep(0.5)
    import base64

    jwt = base64.b64decode(token).decode()
    status, doc = cluster.request("GET", "/version", cert=False, token=jwt)
    assert status == 200
    status, doc = cluster.request("GET", "/api/v1/namespaces/default/secrets", cert=False,
                                  token=jwt)
    assert status == 403 and "system:serviceaccount:default:dash" in str(doc["message"])
    cluster.kubectl("delete", "secret", "dash-token")
    status, _ = cluster.request("GET", "/api/v1/namespaces/default/secrets", cert=False,
                                token=jwt)
    assert status == 401


@needs_kubectl
def test_new_pods_get_the_default_not_ready_and_unreachable_tolerations(
        cluster: Cluster, tmp_path: Path) -> None:
    manifest = tmp_path / "pods.yaml"
    manifest.write_text("""\
apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: default}
spec: {containers: [{name: c, image: registry.example/app:1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: patient, namespace: default}
spec:
  containers: [{name: c, image: registry.example/app:1}]
  tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute,
                 tolerationSeconds: 3600}]
""")
    cluster.kubectl("apply", "-f", str(manifest))
    plain = json.loads(cluster.kubectl("get", "pod", "plain", "-o", "json").stdout)
    assert plain["spec"]["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300}]
    patient = json.loads(cluster.kubectl("get", "pod", "patient", "-o", "json").stdout)
    assert [(t["key"], t["tolerationSeconds"]) for t in patient["spec"]["tolerations"]] == [
        ("node.kubernetes.io/unreachable", 3600), ("node.kubernetes.io/not-ready", 300)]
    cluster.kubectl("delete", "pod", "plain", "patient")
