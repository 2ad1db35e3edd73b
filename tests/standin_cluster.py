"""A stand-in API server in this process, on loopback, with a CA and credentials for it.

Shared by the stand-in's unit tests: `running_cluster()` starts one (and its controllers);
`Cluster` holds its files and talks to it with the real kubectl or plain HTTPS.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from kube_standin import apiserver, pki

KUBECTL = shutil.which("kubectl")
# The machine's kubectl is a dispatcher with one binary per minor beside it; CI machines may
# have only Debian's kubernetes-client. The everyday tests run each version found here.
VERSIONED = Path("/usr/lib/google-cloud-sdk/bin")


def kubectl_versions() -> list[str]:
    """Paths of the kubectl binaries to drive the stand-in with: those named in
    $STANDIN_TEST_KUBECTLS (colon-separated), else 1.27 and 1.33 when present, else kubectl."""
    named = [p for p in os.environ.get("STANDIN_TEST_KUBECTLS", "").split(":") if p]
    if named:
        return named
    found = [str(VERSIONED / f"kubectl.{v}") for v in ("1.27", "1.33")
             if (VERSIONED / f"kubectl.{v}").exists()]
    return found or ([KUBECTL] if KUBECTL else [])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running stand-in API server and credentials for it."""

    port: int
    dir: Path
    ca: pki.Pair
    admin: Path
    state: Path
    kubectl_path: str | None = KUBECTL

    def kubectl(self, *args: str, kubeconfig: Path | None = None, check: bool = True,
                timeout: float = 30, stdin: str | None = None
                ) -> subprocess.CompletedProcess[str]:
        assert self.kubectl_path is not None
        res = subprocess.run([self.kubectl_path, "--kubeconfig", str(kubeconfig or self.admin),
                              *args], capture_output=True, text=True, timeout=timeout,
                             input=stdin)
        if check:
            assert res.returncode == 0, f"kubectl {' '.join(args)}: {res.stderr}"
        return res

    def context(self, cert: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.ca.cert.decode())
        if cert:
            ctx.load_cert_chain(self.dir / "admin.crt", self.dir / "admin.key")
        return ctx

    def request(self, method: str, path: str, body: object = None, token: str = "",
                cert: bool = True, content_type: str = "application/json",
                headers: dict[str, str] | None = None, timeout: float = 10,
                raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(cert),
                                           timeout=timeout)
        sent = {"Content-Type": content_type, **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=sent)
        resp = conn.getresponse()
        text = resp.read()
        conn.close()
        try:
            doc = json.loads(text or b"{}")
        except ValueError:
            doc = {"raw": text}
        return resp.status, doc

    def user_kubeconfig(self, name: str, groups: list[str], directory: Path) -> Path:
        """A kubeconfig with a client certificate for `name` in `groups`."""
        pair = pki.issue(self.ca, name, orgs=groups, client=True)
        path = directory / f"{name.replace(':', '_')}.conf"
        path.write_text(pki.kubeconfig(f"https://127.0.0.1:{self.port}", self.ca.cert, name,
                                       cert=pair.cert, key=pair.key))
        return path

    def wait_for(self, what: str, check: Any, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.2)


SOURCE = Path(__file__).parents[1] / "src"


@dataclass
class Kubelet:
    """A stand-in kubelet in its own process and filesystem root, as on a node."""

    name: str
    root: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start_kubelet(cluster: Cluster, name: str, base: Path, network: bool = True) -> Kubelet:
    """Run the stand-in kubelet for node `name` with a node certificate from the cluster CA
    (as `kubeadm join` leaves it); `network` puts a CNI config in place so the node is Ready."""
    root = base / name
    pair = pki.issue(cluster.ca, f"system:node:{name}", orgs=["system:nodes"], client=True)
    files = {
        "etc/kubernetes/kubelet.conf": pki.kubeconfig(
            f"https://127.0.0.1:{cluster.port}", cluster.ca.cert, f"system:node:{name}",
            cert=pair.cert, key=pair.key),
        "etc/kubernetes/pki/ca.crt": cluster.ca.cert.decode(),
        "var/lib/kubelet/config.yaml": json.dumps({
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "port": free_port(), "healthzPort": free_port(), "nodeStatusUpdateFrequency": "2s",
            "staticPodPath": "/etc/kubernetes/manifests"}),
        "var/lib/kubelet/kubeadm-flags.env":
            f'KUBELET_KUBEADM_ARGS="--node-ip=127.0.0.1 --hostname-override={name}"\n',
    }
    if network:
        files["etc/cni/net.d/10-test.conflist"] = json.dumps(
            {"cniVersion": "0.3.1", "name": "test", "plugins": [{"type": "bridge"}]})
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    env = {**os.environ, "KUBE_STANDIN_ROOT": str(root), "PYTHONPATH": str(SOURCE)}
    log = (root / "kubelet.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "kube_standin.kubelet"], env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    return Kubelet(name, root, process)


def start(d: Path, port: int) -> tuple[threading.Event, threading.Thread]:
    args = apiserver.parser().parse_args([
        f"--secure-port={port}", "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
        f"--tls-cert-file={d}/apiserver.crt", f"--tls-private-key-file={d}/apiserver.key",
        f"--client-ca-file={d}/ca.crt", f"--service-account-key-file={d}/sa.pub",
        f"--service-account-signing-key-file={d}/sa.key",
        f"--cluster-signing-key-file={d}/ca.key", "--cluster-cidr=10.244.0.0/16",
        f"--state-file={d}/state.json"])
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=apiserver.serve, args=(args, ready, stop), daemon=True)
    thread.start()
    assert ready.wait(10)
    return stop, thread


@contextlib.contextmanager
def running_cluster(d: Path) -> Iterator[Cluster]:
    """A stand-in API server whose admin is `system:masters` (as kubeadm's super-admin)."""
    d.mkdir(parents=True, exist_ok=True)
    ca = pki.make_ca()
    serving = pki.issue(ca, "kube-apiserver", ips=["127.0.0.1"], server=True)
    admin = pki.issue(ca, "kubernetes-super-admin", orgs=["system:masters"], client=True)
    sa = pki.new_key()
    files = {"ca.crt": ca.cert, "ca.key": ca.key, "apiserver.crt": serving.cert,
             "apiserver.key": serving.key, "admin.crt": admin.cert, "admin.key": admin.key,
             "sa.key": pki.key_pem(sa), "sa.pub": sa.public_key().public_bytes(
                 serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)}
    for name, data in files.items():
        (d / name).write_bytes(data)
    port = free_port()
    stop, thread = start(d, port)
    c = Cluster(port, d, ca, d / "admin.conf", d / "state.json")
    c.admin.write_text(pki.kubeconfig(f"https://127.0.0.1:{port}", ca.cert,
                                      "kubernetes-super-admin", cert=admin.cert, key=admin.key))
    try:
        yield c
    finally:
        stop.set()
        thread.join(10)
