"""Pretend nodes for the kubeadm and kubelet stand-ins: each a filesystem root on this machine.

The programs run as installed on a node: copied into a `kube_standin` package and started with
Debian's python3 when it has python3-cryptography and python3-yaml (the packages' Depends), so
the code is checked against the library versions the nodes have.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

NODE_SOURCE = Path(__file__).parents[1] / "src/kube_standin"
KUBECTL = shutil.which("kubectl")
# Run by a user, the root check would stop everything; it is tested on its own below.
AS_USER = ["--ignore-preflight-errors=IsPrivilegedUser"] if os.geteuid() != 0 else []


def node_python() -> str:
    debian = "/usr/bin/python3"
    probe = subprocess.run([debian, "-c", "import cryptography, yaml"], capture_output=True,
                           check=False) if os.path.exists(debian) else None
    return debian if probe is not None and probe.returncode == 0 else sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    """One pretend node: a filesystem root, its kubelet ports, a containerd socket."""

    name: str
    root: Path
    lib: Path
    kubelet_port: int = field(default_factory=free_port)
    healthz_port: int = field(default_factory=free_port)
    version: str = ""  # the Kubernetes version its programs stand in for ("" the default)

    def env(self, version: str = "") -> dict[str, str]:
        env = dict(os.environ)
        env.update(KUBE_STANDIN_ROOT=str(self.root), PYTHONPATH=str(self.lib),
                   KUBE_STANDIN_KUBELET_PORT=str(self.kubelet_port),
                   KUBE_STANDIN_KUBELET_HEALTHZ_PORT=str(self.healthz_port),
                   KUBE_STANDIN_DISCOVERY_TIMEOUT="6")
        if version or self.version:
            env["KUBE_STANDIN_VERSION"] = version or self.version
        return env

    def kubeadm(self, *args: str, timeout: float = 120, version: str = "",
                stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run kubeadm on this node; `version` is that of the kubeadm package installed."""
        return subprocess.run([node_python(), "-m", "kube_standin.kubeadm", *args],
                              env=self.env(version), capture_output=True, text=True,
                              timeout=timeout, input=stdin)

    def start_kubelet(self, version: str = "") -> None:
        """(Re)start the kubelet service, of the given package version."""
        subprocess.run([node_python(), "-c", "from kube_standin import services; "
                        "services.start('kubelet')"], env=self.env(version), check=True)

    def kill_services(self) -> None:
        for pidfile in (self.root / "run/kube-standin").glob("*.pid"):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)


def make_node(base: Path, name: str, lib: Path, sockets: list[socket.socket]) -> Node:
    """A node root with what preflight checks (forwarding on, memory cgroup, containerd)."""
    root = base / name
    (root / "proc/sys/net/ipv4").mkdir(parents=True)
    (root / "proc/sys/net/ipv4/ip_forward").write_text("1\n")
    (root / "proc/cgroups").write_text("#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
                                       "memory\t5\t90\t1\n")
    (root / "var/run/containerd").mkdir(parents=True)
    cri = socket.socket(socket.AF_UNIX)  # containerd's socket, listening as the runtime would
    cri.bind(str(root / "var/run/containerd/containerd.sock"))
    cri.listen(8)
    sockets.append(cri)
    return Node(name, root, lib)


def install_lib(base: Path) -> Path:
    """Copy the node programs as a package installs them; returns the folder to import from."""
    lib = base / "lib"
    shutil.copytree(NODE_SOURCE, lib / "kube_standin", ignore=shutil.ignore_patterns(
        "__pycache__"))
    return lib


@contextlib.contextmanager
def kubectl_proxy(kubeconfig: Path) -> Iterator[str]:
    """The machine's real `kubectl proxy` on a free port; yields its base URL."""
    assert KUBECTL is not None
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(kubeconfig), "proxy", "--port=0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert m, line + (proc.stderr.read() if proc.stderr else "")
        yield f"http://127.0.0.1:{m.group(1)}"
    finally:
        proc.terminate()
        proc.wait(10)


def fetch(url: str) -> tuple[int, str, dict[str, str]]:
    """One GET without following redirects: status, body, headers."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), dict(resp.getheaders())
    finally:
        conn.close()
