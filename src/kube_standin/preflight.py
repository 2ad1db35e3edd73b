"""kubeadm's pre-flight checks, with the real check names and wording."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .paths import p

CRI_SOCKET = "/var/run/containerd/containerd.sock"


@dataclass(frozen=True)
class Check:
    """A named check; `run` returns the error text, or None when it passes."""

    name: str
    run: Callable[[], str | None]


def _root() -> str | None:
    return None if os.geteuid() == 0 else "user is not running as root"


def _cri() -> str | None:
    path = p(CRI_SOCKET)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(2)
        sock.connect(str(path))
        return None
    except OSError as exc:
        return (f"container runtime is not running: output: , error: validate service "
                f'connection: dial unix {CRI_SOCKET}: connect: {exc.strerror or exc}')
    finally:
        sock.close()


def _swap() -> str | None:
    try:
        lines = p("/proc/swaps").read_text().splitlines()
    except OSError:
        return None
    return "running with swap on is not supported. Please disable swap" if len(lines) > 1 \
        else None


def memory_cgroup() -> bool:
    """Whether the memory controller is available: cgroup v2 or v1 layout (facts.md sec. 2)."""
    v2 = p("/sys/fs/cgroup/cgroup.controllers")
    if v2.exists():
        return "memory" in v2.read_text().split()
    try:
        for line in p("/proc/cgroups").read_text().splitlines():
            cols = line.split()
            if cols and cols[0] == "memory":
                return len(cols) >= 4 and cols[3] == "1"
    except OSError:
        pass
    return False


def _cgroups() -> str | None:
    return None if memory_cgroup() else "missing required cgroups: memory"


def _forward() -> str | None:
    path = "/proc/sys/net/ipv4/ip_forward"
    try:
        ok = p(path).read_text().strip() == "1"
    except OSError:
        ok = False
    return None if ok else f"{path} contents are not set to 1"


def _port(port: int) -> Callable[[], str | None]:
    def check() -> str | None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("0.0.0.0", port))
            return None
        except OSError:
            return f"Port {port} is in use"
        finally:
            sock.close()
    return check


def _file_absent(path: str) -> Check:
    name = "FileAvailable-" + path.replace("/", "-")
    return Check(name, lambda: f"{path} already exists" if p(path).exists() else None)


def _dir_empty(path: str) -> Check:
    name = "DirAvailable-" + path.replace("/", "-")
    return Check(name, lambda: f"{path} is not empty"
                 if p(path).is_dir() and any(p(path).iterdir()) else None)


def _cpus() -> str | None:
    n = os.cpu_count() or 1
    return None if n >= 2 else f"the number of available CPUs {n} is less than the required 2"


def _mem() -> str | None:
    try:
        for line in p("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mb = int(line.split()[1]) // 1024
                return None if mb >= 1700 else \
                    f"the system RAM ({mb} MB) is less than the minimum 1700 MB"
    except OSError:
        pass
    return None


def privileged() -> Check:
    """The root check alone (kubeadm upgrade runs only this one on the node)."""
    return Check("IsPrivilegedUser", _root)


def common(kubelet_port: int) -> list[Check]:
    """Checks both init and join run."""
    return [Check("IsPrivilegedUser", _root), Check("CRI", _cri), Check("Swap", _swap),
            Check("SystemVerification", _cgroups), Check(f"Port-{kubelet_port}",
                                                         _port(kubelet_port)),
            Check("FileContent--proc-sys-net-ipv4-ip_forward", _forward)]


def for_init(api_port: int, kubelet_port: int) -> list[Check]:
    """init: plus CPUs, memory, the API port and the control-plane files."""
    return [Check("NumCPU", _cpus), Check("Mem", _mem), Check(f"Port-{api_port}",
                                                              _port(api_port)),
            *common(kubelet_port),
            _file_absent("/etc/kubernetes/manifests/kube-apiserver.yaml"),
            _file_absent("/etc/kubernetes/manifests/kube-controller-manager.yaml"),
            _dir_empty("/var/lib/etcd")]


def for_join(kubelet_port: int) -> list[Check]:
    """join: plus the files a joined node has."""
    return [*common(kubelet_port), _dir_empty("/etc/kubernetes/manifests"),
            _file_absent("/etc/kubernetes/kubelet.conf"),
            _file_absent("/etc/kubernetes/pki/ca.crt")]


def run(checks: Iterable[Check], ignore: set[str]) -> list[str]:
    """Print warnings for ignored failures; return the `[ERROR X]: msg` lines of the rest."""
    errors = []
    ignore_all = "all" in ignore
    for check in checks:
        msg = check.run()
        if msg is None:
            continue
        if ignore_all or check.name.lower() in ignore:
            print(f"\t[WARNING {check.name}]: {msg}")
        else:
            errors.append(f"\t[ERROR {check.name}]: {msg}")
    return errors
