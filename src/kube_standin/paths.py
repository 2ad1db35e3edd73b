"""Where the stand-in keeps its files, and which Kubernetes version it pretends to be.

On a node the filesystem root is `/`. Tests point `KUBE_STANDIN_ROOT` at a temporary directory,
which also switches services from systemd to plain child processes (see `services.py`).
"""

from __future__ import annotations

import os
from pathlib import Path

BANNER = "sandbox stand-in, not Kubernetes"
_DEV_VERSION = "1.34.1"


def root() -> Path:
    """The filesystem root the stand-in works under."""
    return Path(os.environ.get("KUBE_STANDIN_ROOT", "/"))


def test_mode() -> bool:
    """True when running under a test root rather than on a node."""
    return root() != Path("/")


def p(relative: str) -> Path:
    """An absolute node path such as `/etc/kubernetes/admin.conf`, under the current root."""
    return root() / relative.lstrip("/")


_version: list[str] = []


def set_version(kube_version: str) -> None:
    """Say which Kubernetes version this program stands in for: each program's launcher does
    (kubeadm and kubelet packages carry their own; the API server reads its manifest's image)."""
    _version[:] = [kube_version.removeprefix("v")]


def version() -> str:
    """The Kubernetes version this program stands in for, e.g. `1.34.1`; tests set it with
    KUBE_STANDIN_VERSION."""
    return _version[0] if _version else os.environ.get("KUBE_STANDIN_VERSION", _DEV_VERSION)


def git_version() -> str:
    """The `v1.34.1` form that kubectl and kubeadm print."""
    return "v" + version()


def write_private(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    """Write a file atomically with `mode` set before any byte lands (keys, kubeconfigs)."""
    raw = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, raw)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_public(path: Path, data: bytes | str) -> None:
    """Write a world-readable file atomically (certificates, configs)."""
    write_private(path, data, 0o644)
