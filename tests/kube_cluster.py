"""A running API server stand-in on loopback, and kubeadm-shaped credentials for it.

For the tests of `pifleet.kube`: the server is the sandbox's stand-in (kube_standin), started
in this process with a fresh PKI, bound to 127.0.0.1 only. `admin_conf` is what `kubeadm init`
leaves in /etc/kubernetes/admin.conf: cluster `kubernetes`, user `kubernetes-admin` (group
`kubeadm:cluster-admins`, bound to cluster-admin), context `kubernetes-admin@kubernetes`.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from cryptography.hazmat.primitives import serialization

from kube_standin import apiserver, pki
from pifleet.kube import fleet_kubeconfig

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="no kubectl on this machine")
# admin.conf names the node's own address; the tests point pifleet at 127.0.0.1 instead. Any
# connection to this one is refused (nothing listens there), so a missed rewrite shows.
NODE_ADDRESS = "127.0.0.2"


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class StandinCluster:
    """A running stand-in and the credentials kubeadm would have written for it.

    Nodes added here get a kubelet's heartbeat (every few seconds), so they do not go Unknown
    after the stand-in's grace period while a long test module runs.
    """

    port: int
    dir: Path
    ca: pki.Pair
    admin: pki.Pair
    admin_conf: str
    kubelets: dict[str, bool] = field(default_factory=dict)
    _beat: threading.Lock = field(default_factory=threading.Lock)

    @property
    def local_conf(self) -> str:
        """admin.conf with the server at 127.0.0.1 (for kubectl in tests)."""
        return self.admin_conf.replace(f"https://{NODE_ADDRESS}:", "https://127.0.0.1:")

    def request(self, method: str, path: str, body: object = None,
                content_type: str = "application/json") -> tuple[int, Any]:
        """One request as kubernetes-admin, JSON in and out."""
        ctx = ssl.create_default_context(cadata=self.ca.cert.decode())
        cert, key = self.dir / "admin.crt", self.dir / "admin.key"
        ctx.load_cert_chain(cert, key)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": content_type})
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        return resp.status, json.loads(raw) if raw.startswith(b"{") else raw.decode()

    def add_node(self, name: str, ready: bool = True, roles: tuple[str, ...] = (),
                 version: str = "v1.34.1", message: str = "") -> None:
        """Register a Node as a kubelet would."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        labels = {"kubernetes.io/os": "linux", "kubernetes.io/hostname": name}
        labels.update({f"node-role.kubernetes.io/{r}": "" for r in roles})
        condition = {"type": "Ready", "status": "True" if ready else "False",
                     "lastHeartbeatTime": now, "lastTransitionTime": now,
                     "reason": "KubeletReady" if ready else "KubeletNotReady",
                     "message": message or ("kubelet is posting ready status" if ready else
                                            "container runtime network not ready: cni config "
                                            "uninitialized")}
        status, doc = self.request("POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "status": {"conditions": [condition], "nodeInfo": {"kubeletVersion": version}}})
        assert status == 201, doc
        self.kubelets[name] = ready

    def set_node_ready(self, name: str, ready: bool) -> None:
        """Change a Node's Ready condition (what its kubelet reports from now on)."""
        with self._beat:
            self.kubelets[name] = ready
            self._post_status(name, ready)

    def heartbeat(self) -> None:
        """Every node's kubelet posts its status once."""
        for name in list(self.kubelets):
            with self._beat:
                self._post_status(name, self.kubelets[name])

    def _post_status(self, name: str, ready: bool) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        status, doc = self.request("PATCH", f"/api/v1/nodes/{name}/status", {"status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                            "lastHeartbeatTime": now, "lastTransitionTime": now,
                            "reason": "KubeletReady" if ready else "KubeletNotReady",
                            "message": "kubelet is posting ready status" if ready else
                            "container runtime network not ready: cni config "
                            "uninitialized"}]}},
            "application/merge-patch+json")
        assert status == 200, doc

    def ready_pods(self, namespace: str) -> int:
        """Mark every pod in a namespace Running and Ready, as kubelets would; how many."""
        status, pods = self.request("GET", f"/api/v1/namespaces/{namespace}/pods")
        assert status == 200, pods
        for pod in pods["items"]:
            name = pod["metadata"]["name"]
            status, doc = self.request(
                "PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}/status",
                {"status": {"phase": "Running",
                            "conditions": [{"type": "Ready", "status": "True"}]}},
                "application/merge-patch+json")
            assert status == 200, doc
        return len(pods["items"])

    def kubectl(self, *args: str, kubeconfig: Path | None = None, check: bool = True,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The machine's real kubectl."""
        assert KUBECTL is not None
        cmd = [KUBECTL, *(["--kubeconfig", str(kubeconfig)] if kubeconfig else []), *args]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
        if check:
            assert res.returncode == 0, res.stderr
        return res


def _serving(ca: pki.Pair, not_before: dt.datetime | None) -> pki.Pair:
    if not_before is None:
        return pki.issue(ca, "kube-apiserver", ips=["127.0.0.1"], server=True)
    with mock.patch.object(pki, "_now", lambda: not_before):
        return pki.issue(ca, "kube-apiserver", ips=["127.0.0.1"], server=True)


@contextmanager
def running_standin(d: Path, *, serving_not_before: dt.datetime | None = None
                    ) -> Iterator[StandinCluster]:
    """Start the stand-in API server on 127.0.0.1 with a new PKI in `d`; stop it after."""
    ca = pki.make_ca()
    admin = pki.issue(ca, "kubernetes-admin", orgs=["kubeadm:cluster-admins"], client=True)
    masters = pki.issue(ca, "kubernetes-super-admin", orgs=["system:masters"], client=True)
    serving = _serving(ca, serving_not_before)
    sa = pki.new_key()
    files = {"ca.crt": ca.cert, "ca.key": ca.key, "apiserver.crt": serving.cert,
             "apiserver.key": serving.key, "admin.crt": masters.cert, "admin.key": masters.key,
             "sa.key": pki.key_pem(sa), "sa.pub": sa.public_key().public_bytes(
                 serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)}
    for name, data in files.items():
        (d / name).write_bytes(data)
    port = free_port()
    args = apiserver.parser().parse_args([
        f"--secure-port={port}", "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
        f"--tls-cert-file={d}/apiserver.crt", f"--tls-private-key-file={d}/apiserver.key",
        f"--client-ca-file={d}/ca.crt", f"--service-account-key-file={d}/sa.pub",
        f"--service-account-signing-key-file={d}/sa.key",
        f"--cluster-signing-key-file={d}/ca.key", "--cluster-cidr=10.244.0.0/16"])
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=apiserver.serve, args=(args, ready, stop), daemon=True)
    thread.start()
    assert ready.wait(10)
    admin_conf = pki.kubeconfig(f"https://{NODE_ADDRESS}:{port}", ca.cert, "kubernetes-admin",
                                cert=admin.cert, key=admin.key)
    cluster = StandinCluster(port, d, ca, admin, admin_conf)

    def kubelets() -> None:
        while not stop.wait(5):
            with suppress(OSError, AssertionError):  # the server is stopping: nobody to tell
                cluster.heartbeat()

    beating = threading.Thread(target=kubelets, daemon=True)
    beating.start()
    try:
        if serving_not_before is None:
            # What kubeadm does at init: its admins' group gets cluster-admin.
            status, doc = cluster.request(
                "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
                    "metadata": {"name": "kubeadm:cluster-admins"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                "kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"kind": "Group", "name": "kubeadm:cluster-admins"}]})
            assert status == 201, doc
        yield cluster
    finally:
        stop.set()
        thread.join(10)
        beating.join(10)


def fleet_document(cluster: StandinCluster, address: str = "127.0.0.1") -> dict[str, Any]:
    """The fleet `team1`'s kubeconfig for this cluster, as pifleet makes it from admin.conf."""
    return fleet_kubeconfig(cluster.admin_conf, name="team1", address=address).document()
