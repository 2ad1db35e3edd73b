"""A node's identity gets node rights only: the Node authorizer and NodeRestriction.

As probed in the field: with a join (bootstrap) token anyone can have a certificate for
`system:node:evil` in `system:nodes` approved, as on a real kubeadm cluster. That certificate
must not read kube-system secrets nor bind itself to cluster-admin; it may register and edit
its own Node, read its own pods and what they use, and nothing of other nodes.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kube_standin import pki
from standin_cluster import KUBECTL, Cluster, running_cluster

TOKEN_ID, TOKEN_SECRET = "abcdef", "0123456789abcdef"
TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="no kubectl on this machine")


def binding(name: str, role: str, group: str) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                          "name": group}]}


@dataclass
class Setup:
    cluster: Cluster
    evil: Path  # kubeconfig of system:node:evil, certified through the bootstrap token
    evil_cert: tuple[bytes, bytes]


def csr(cn: str, orgs: list[str], signer: str) -> tuple[dict[str, Any], bytes]:
    pem, key = pki.make_csr(cn, orgs)
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"generateName": "csr-"},
            "spec": {"request": base64.b64encode(pem).decode(), "signerName": signer,
                     "usages": ["digital signature", "client auth"]}}, key


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    d = tmp_path_factory.mktemp("nodeauth")
    with running_cluster(d / "server") as cluster:
        # What `kubeadm init` leaves: a join token and the bindings that make it work.
        token = {k: base64.b64encode(v.encode()).decode() for k, v in {
            "token-id": TOKEN_ID, "token-secret": TOKEN_SECRET,
            "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
            "auth-extra-groups": TOKEN_GROUP}.items()}
        assert cluster.request("POST", "/api/v1/namespaces/kube-system/secrets", {
            "metadata": {"name": f"bootstrap-token-{TOKEN_ID}"},
            "type": "bootstrap.kubernetes.io/token", "data": token})[0] == 201
        # A default role of the real server (the stand-in's kubeadm also writes it).
        assert cluster.request("POST", f"{RBAC}/clusterroles", {
            "metadata": {"name": "system:node-bootstrapper"},
            "rules": [{"apiGroups": ["certificates.k8s.io"],
                       "resources": ["certificatesigningrequests"],
                       "verbs": ["create", "get", "list", "watch"]}]})[0] in (201, 409)
        for name, role, group in (
                ("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", TOKEN_GROUP),
                ("kubeadm:node-autoapprove-bootstrap",
                 "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                 TOKEN_GROUP),
                ("kubeadm:node-autoapprove-certificate-rotation",
                 "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                 "system:nodes")):
            assert cluster.request("POST", f"{RBAC}/clusterrolebindings",
                                   binding(name, role, group))[0] == 201
        body, key = csr("system:node:evil", ["system:nodes"],
                        "kubernetes.io/kube-apiserver-client-kubelet")
        status, made = cluster.request("POST", CSRS, body, cert=False,
                                       token=f"{TOKEN_ID}.{TOKEN_SECRET}")
        assert status == 201, made
        cert = base64.b64decode(made["status"]["certificate"])
        assert made["status"]["conditions"][0]["reason"] == "AutoApproved"
        evil = d / "evil.conf"
        evil.write_text(pki.kubeconfig(f"https://127.0.0.1:{cluster.port}", cluster.ca.cert,
                                       "system:node:evil", cert=cert, key=key))
        # Another node with a pod that uses a Secret and a ConfigMap, and one pod on evil.
        for name in ("pi-1", "evil"):
            assert cluster.request("POST", "/api/v1/nodes", {"metadata": {"name": name}})[
                0] == 201
        for kind, name in (("secrets", "pi-secret"), ("configmaps", "pi-config"),
                           ("configmaps", "evil-config")):
            assert cluster.request("POST", f"/api/v1/namespaces/default/{kind}", {
                "metadata": {"name": name}})[0] == 201
        pods = {"on-pi": ("pi-1", "pi-config", "pi-secret"),
                "on-evil": ("evil", "evil-config", None)}
        for pod, (node, config, secret) in pods.items():
            volumes: list[dict[str, Any]] = [{"name": "c", "configMap": {"name": config}}]
            if secret:
                volumes.append({"name": "s", "secret": {"secretName": secret}})
            assert cluster.request("POST", "/api/v1/namespaces/default/pods", {
                "metadata": {"name": pod}, "spec": {"nodeName": node, "volumes": volumes,
                                                    "containers": [{"name": "c",
                                                                    "image": "x:1"}]}})[
                0] == 201
        yield Setup(cluster, evil, (cert, key))


def as_node(s: Setup, method: str, path: str, body: object = None,
            content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
    """A request with the node certificate."""
    import http.client
    import json
    import ssl

    ctx = ssl.create_default_context(cadata=s.cluster.ca.cert.decode())
    cert_file = s.evil.with_suffix(".pem")
    cert_file.write_bytes(s.evil_cert[0] + s.evil_cert[1])
    ctx.load_cert_chain(cert_file)
    conn = http.client.HTTPSConnection("127.0.0.1", s.cluster.port, context=ctx, timeout=10)
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={"Content-Type": content_type})
    resp = conn.getresponse()
    doc = json.loads(resp.read() or b"{}")
    conn.close()
    return resp.status, doc


def kubectl(s: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run([KUBECTL, "--kubeconfig", str(s.evil), *args], capture_output=True,
                          text=True, timeout=30)


@needs_kubectl
def test_node_certificate_cannot_read_kube_system_secrets(setup: Setup) -> None:
    listed = kubectl(setup, "get", "secrets", "-n", "kube-system")
    assert listed.returncode != 0 and "forbidden" in listed.stderr
    one = kubectl(setup, "get", "secret", f"bootstrap-token-{TOKEN_ID}", "-n", "kube-system")
    assert one.returncode != 0
    assert "no relationship found between node 'evil' and this object" in one.stderr


@needs_kubectl
def test_node_certificate_cannot_make_itself_cluster_admin(setup: Setup) -> None:
    made = kubectl(setup, "create", "clusterrolebinding", "pwn", "--clusterrole=cluster-admin",
                   "--user=system:node:evil")
    assert made.returncode != 0 and "forbidden" in made.stderr
    status, _ = setup.cluster.request("GET", f"{RBAC}/clusterrolebindings/pwn")
    assert status == 404
    can = kubectl(setup, "auth", "can-i", "create", "clusterrolebindings")
    assert can.stdout.strip() == "no"


def test_node_edits_only_its_own_node(setup: Setup) -> None:
    merge = "application/merge-patch+json"
    status, _ = as_node(setup, "PATCH", "/api/v1/nodes/evil",
                        {"metadata": {"labels": {"disk": "ssd"}}}, merge)
    assert status == 200
    status, _ = as_node(setup, "PATCH", "/api/v1/nodes/evil/status",
                        {"status": {"phase": "Running"}}, merge)
    assert status == 200
    status, doc = as_node(setup, "PATCH", "/api/v1/nodes/pi-1",
                          {"metadata": {"labels": {"owned": "yes"}}}, merge)
    assert status == 403 and 'node "evil" is not allowed to modify node "pi-1"' in doc["message"]
    status, doc = as_node(setup, "PATCH", "/api/v1/nodes/evil",
                          {"metadata": {"labels": {"node-role.kubernetes.io/control-plane":
                                                   ""}}}, merge)
    assert status == 403 and "not allowed to modify labels" in doc["message"]
    status, _ = as_node(setup, "DELETE", "/api/v1/nodes/pi-1")
    assert status == 403
    status, doc = as_node(setup, "GET", "/api/v1/nodes/pi-1")
    assert status == 403 and "only its own Node object" in doc["message"]
    assert as_node(setup, "GET", "/api/v1/nodes/evil")[0] == 200


def test_node_reads_only_its_pods_and_what_they_use(setup: Setup) -> None:
    status, listed = as_node(setup, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Devil")
    assert status == 200 and [p["metadata"]["name"] for p in listed["items"]] == ["on-evil"]
    status, doc = as_node(setup, "GET", "/api/v1/pods")
    assert status == 403 and "spec.nodeName field selector" in doc["message"]
    assert as_node(setup, "GET", "/api/v1/namespaces/default/configmaps/evil-config")[0] == 200
    for kind, name in (("configmaps", "pi-config"), ("secrets", "pi-secret")):
        status, _ = as_node(setup, "GET", f"/api/v1/namespaces/default/{kind}/{name}")
        assert status == 403, name
    status, doc = as_node(setup, "PATCH", "/api/v1/namespaces/default/pods/on-pi/status",
                          {"status": {"phase": "Failed"}}, "application/merge-patch+json")
    assert status == 403 and "spec.nodeName set to itself" in doc["message"]
    assert as_node(setup, "PATCH", "/api/v1/namespaces/default/pods/on-evil/status",
                   {"status": {"phase": "Running"}}, "application/merge-patch+json")[0] == 200


def test_node_creates_only_its_own_mirror_pods(setup: Setup) -> None:
    pod = {"metadata": {"name": "sneaky"}, "spec": {"nodeName": "evil", "containers": [
        {"name": "c", "image": "x:1"}]}}
    status, doc = as_node(setup, "POST", "/api/v1/namespaces/default/pods", pod)
    assert status == 403 and "can only create mirror pods" in doc["message"]
    pod["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}  # type: ignore[index]
    pod["spec"]["nodeName"] = "pi-1"  # type: ignore[index]
    status, doc = as_node(setup, "POST", "/api/v1/namespaces/default/pods", pod)
    assert status == 403 and "spec.nodeName set to itself" in doc["message"]
    pod["spec"]["nodeName"] = "evil"  # type: ignore[index]
    assert as_node(setup, "POST", "/api/v1/namespaces/kube-system/pods", pod)[0] == 201


def test_csrs_are_approved_only_for_who_may_have_them(setup: Setup) -> None:
    """A requester without the nodeclient binding gets no node certificate; a client
    certificate for a person is issued once an admin approves it."""
    c = setup.cluster
    assert c.request("POST", "/api/v1/namespaces/default/serviceaccounts",
                     {"metadata": {"name": "csr-maker"}})[0] == 201
    assert c.request("POST", f"{RBAC}/clusterrolebindings", {
        "metadata": {"name": "csr-maker"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "system:node-bootstrapper"},
        "subjects": [{"kind": "ServiceAccount", "name": "csr-maker",
                      "namespace": "default"}]})[0] == 201
    token = c.request("POST", "/api/v1/namespaces/default/serviceaccounts/csr-maker/token",
                      {"spec": {}})[1]["status"]["token"]
    body, _ = csr("system:node:other", ["system:nodes"],
                  "kubernetes.io/kube-apiserver-client-kubelet")
    status, made = c.request("POST", CSRS, body, cert=False, token=token)
    assert status == 201 and not (made.get("status") or {}).get("certificate")
    # A person's certificate: pending until approved (kubectl certificate approve).
    body, key = csr("alice", ["students"], "kubernetes.io/kube-apiserver-client")
    body["metadata"] = {"name": "alice"}
    assert c.request("POST", CSRS, body)[0] == 201
    assert not (c.request("GET", f"{CSRS}/alice")[1].get("status") or {}).get("certificate")
    if KUBECTL is not None:
        subprocess.run([KUBECTL, "--kubeconfig", str(c.admin), "certificate", "approve", "alice"],
                       check=True, capture_output=True, timeout=30)
    else:
        status, live = c.request("GET", f"{CSRS}/alice")
        live["status"] = {"conditions": [{"type": "Approved", "status": "True",
                                          "reason": "Test", "message": "approved"}]}
        assert c.request("PUT", f"{CSRS}/alice/approval", live)[0] == 200
    issued = c.wait_for("alice's certificate", lambda: (c.request("GET", f"{CSRS}/alice")[1]
                                                        .get("status") or {}).get("certificate"))
    assert pki.subject_of(base64.b64decode(issued)) == ("alice", ["students"])
    assert key


def test_node_gets_tokens_only_for_its_pods(setup: Setup) -> None:
    c = setup.cluster
    for name, node in (("evil-sa", "evil"), ("pi-sa", "pi-1")):
        assert c.request("POST", "/api/v1/namespaces/default/serviceaccounts",
                         {"metadata": {"name": name}})[0] == 201
        status, pod = c.request("POST", "/api/v1/namespaces/default/pods", {
            "metadata": {"name": f"uses-{name}"},
            "spec": {"nodeName": node, "serviceAccountName": name,
                     "containers": [{"name": "c", "image": "x:1"}]}})
        assert status == 201, pod

    def ask(account: str, pod: str) -> tuple[int, dict[str, Any]]:
        return as_node(setup, "POST",
                       f"/api/v1/namespaces/default/serviceaccounts/{account}/token", {
                           "spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                                       "name": pod}}})

    status, made = ask("evil-sa", "uses-evil-sa")
    assert status == 201 and made["status"]["token"]
    status, doc = ask("pi-sa", "uses-pi-sa")
    assert status == 403  # a pod on another node: no relationship, or not bound to it
    status, doc = as_node(setup, "POST",
                          "/api/v1/namespaces/default/serviceaccounts/evil-sa/token",
                          {"spec": {}})
    assert status == 403 and "not bound to a pod" in doc["message"]
