"""Start and stop the stand-in's services: systemd on nodes, child processes under a test root."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .paths import p, test_mode

APISERVER = "kube-apiserver-standin"
MANIFESTS = "/etc/kubernetes/manifests"
# service name -> module run by `python3 -m <package>.<module>` in test mode
MODULES = {APISERVER: "apiserver", "kubelet": "kubelet"}
# The static-pod manifests the API server service reads its flags from.
APISERVER_MANIFESTS = ("kube-apiserver.yaml", "kube-controller-manager.yaml")


def image_version(manifest: Path) -> str:
    """The version in a static-pod manifest's image tag (`...:v1.34.1` -> `1.34.1`), or ''."""
    try:
        pod = yaml.safe_load(manifest.read_text())
        image = str(pod["spec"]["containers"][0]["image"])
    except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError):
        return ""
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
    return tag.removeprefix("v")


def start_apiserver() -> None:
    """(Re)start the API server service on the manifests kubeadm wrote."""
    start(APISERVER, ["--manifests", str(p(MANIFESTS))])


def _pidfile(name: str) -> str:
    return str(p(f"/run/kube-standin/{name}.pid"))


def start(name: str, args: list[str] | None = None) -> None:
    """Start (or restart) a service."""
    if not test_mode():
        subprocess.run(["systemctl", "enable", name], check=False, capture_output=True)
        subprocess.run(["systemctl", "restart", name], check=True, capture_output=True)
        return
    stop(name)
    os.makedirs(os.path.dirname(_pidfile(name)), exist_ok=True)
    package = __name__.rsplit(".", 1)[0]
    log = open(p(f"/run/kube-standin/{name}.log"), "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen([sys.executable, "-m", f"{package}.{MODULES[name]}", *(args or [])],
                            stdout=log, stderr=log, start_new_session=True, env=os.environ.copy())
    with open(_pidfile(name), "w") as fh:
        fh.write(str(proc.pid))


def stop(name: str) -> None:
    """Stop a service if it runs."""
    if not test_mode():
        subprocess.run(["systemctl", "stop", name], check=False, capture_output=True)
        return
    try:
        with open(_pidfile(name)) as fh:
            pid = int(fh.read())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    os.unlink(_pidfile(name))


def disable(name: str) -> None:
    """Stop a service and keep it from starting at boot."""
    stop(name)
    if not test_mode():
        subprocess.run(["systemctl", "disable", name], check=False, capture_output=True)
