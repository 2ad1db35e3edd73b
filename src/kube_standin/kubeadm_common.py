"""What kubeadm's commands share: errors, preflight, tokens, kubelet files, waiting."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from . import pki, preflight
from .client import Client, ClientError
from .paths import p, test_mode, write_public
from .services import APISERVER

__all__ = ["APISERVER"]


ADMIN_GROUP = "kubeadm:cluster-admins"

TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"


class Fail(Exception):
    """A kubeadm error: printed as the real one prints it, exit status 1."""


def kubelet_ports() -> tuple[int, int]:
    """(port, healthzPort). Tests on a shared machine move them with environment variables."""
    if test_mode():
        return (int(os.environ.get("KUBE_STANDIN_KUBELET_PORT", "10250")),
                int(os.environ.get("KUBE_STANDIN_KUBELET_HEALTHZ_PORT", "10248")))
    return 10250, 10248

def parse_duration(text: str) -> int:
    """Seconds in a Go duration such as `24h0m0s`, `30m` or `0`."""
    if text.strip() in ("0", ""):
        return 0
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise Fail(f'invalid argument "{text}": time: invalid duration "{text}"')
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return int(sum(float(n) * scale[u] for n, u in parts))

def default_address() -> str:
    """The IPv4 address of the interface holding the default route (kubeadm's choice)."""
    try:
        routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "default"],
                                           capture_output=True, text=True, check=True).stdout)
        dev = routes[0]["dev"]
        addrs = json.loads(subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", dev],
                                          capture_output=True, text=True, check=True).stdout)
        return str(addrs[0]["addr_info"][0]["local"])
    except (OSError, subprocess.CalledProcessError, IndexError, KeyError, ValueError):
        if test_mode():
            return "127.0.0.1"
        raise Fail("unable to select an IP from default routes.") from None

def node_name(flag: str | None) -> str:
    """--node-name or the lower-cased hostname, as kubeadm does."""
    return (flag or socket.gethostname()).lower()

def run_preflight(checks: list[preflight.Check], ignore: list[str], end: str = "") -> None:
    """Print `[preflight]` and fail like kubeadm when a check fails."""
    wanted = {i.strip().lower() for item in ignore for i in item.split(",") if i.strip()}
    print(f"[preflight] Running pre-flight checks{end}")
    errors = preflight.run(checks, wanted)
    if errors:
        raise Fail("[preflight] Some fatal errors occurred:\n" + "\n".join(errors) +
                   "\n[preflight] If you know what you are doing, you can make a check "
                   "non-fatal with `--ignore-preflight-errors=...`")

def bootstrap_secret(token: str, ttl: int, description: str) -> dict[str, Any]:
    """The Secret kubeadm stores for a bootstrap token."""
    token_id, secret = token.split(".")
    data = {"token-id": token_id, "token-secret": secret,
            "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
            "auth-extra-groups": TOKEN_GROUP, "description": description}
    if ttl:
        data["expiration"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + ttl))
    return {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}

def join_command(endpoint: str, token: str, ca_cert: bytes) -> str:
    """The one-line join command `token create --print-join-command` prints."""
    return (f"kubeadm join {endpoint} --token {token} --discovery-token-ca-cert-hash "
            f"{pki.ca_hash(ca_cert)} ")

def write_kubelet_config(node: str, address: str, cluster_dns: str) -> None:
    """/var/lib/kubelet/config.yaml and kubeadm-flags.env, as kubeadm writes them."""
    port, healthz = kubelet_ports()
    config = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
              "authentication": {"x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"}},
              "cgroupDriver": "systemd", "clusterDNS": [cluster_dns],
              "clusterDomain": "cluster.local", "healthzBindAddress": "127.0.0.1",
              "healthzPort": healthz, "port": port, "nodeStatusUpdateFrequency": "10s",
              "rotateCertificates": True, "staticPodPath": "/etc/kubernetes/manifests"}
    print('[kubelet-start] Writing kubelet configuration to file "/var/lib/kubelet/config.yaml"')
    write_public(p("/var/lib/kubelet/config.yaml"), yaml.safe_dump(config, sort_keys=False))
    print('[kubelet-start] Writing kubelet environment file with flags to file '
          '"/var/lib/kubelet/kubeadm-flags.env"')
    write_public(p("/var/lib/kubelet/kubeadm-flags.env"),
                 f'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix://'
                 f'{preflight.CRI_SOCKET} --node-ip={address} --hostname-override={node}"\n')

def wait_for(what: str, fn: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = fn()
            if result:
                return result
        except (ClientError, OSError) as exc:
            last = exc
        time.sleep(0.5)
    raise Fail(f"timed out waiting for {what}" + (f": {last}" if last else ""))


def admin_client(kubeconfig: str = "") -> Client:
    """A client with the credentials of a kubeconfig (admin.conf unless told)."""
    kubeconfig = kubeconfig or "/etc/kubernetes/admin.conf"
    # kubeadm's own files are under the (test) root; any other path is the user's own.
    path = p(kubeconfig) if kubeconfig.startswith("/etc/kubernetes/") else Path(kubeconfig)
    if not path.exists():
        raise Fail(f"failed to load admin kubeconfig: open {path}: no such file or directory")
    return Client.from_kubeconfig(path.read_text())
