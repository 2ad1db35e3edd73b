"""Host services of the sandbox, started as plain processes (this machine's PID 1 is not
systemd): each sandbox's apt proxy and package server, both on its bridge address.

The apt proxy (aptproxy.py) is one process per sandbox, so no sandbox's start or stop ever
restarts another's; all of them share one cache folder. It serves only this machine's Debian
archives, read from its apt sources when the proxy starts.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

from pifleet.errors import Failed
from pifleet.sandbox import processes, sources
from pifleet.sandbox.registry import run_dir
from pifleet.sandbox.rootfs import cache_dir

# Not apt-cacher-ng's 3142: a system apt-cacher-ng listens there on every address.
APT_PROXY_PORT = 3143
PACKAGES_PORT = 8080
# Every port a node may open a connection to on its own bridge address (network.py).
SERVICE_PORTS = (APT_PROXY_PORT, PACKAGES_PORT)
APT_PROXY_CONFIG = "apt-proxy-"  # + ident + ".json" in the run folder: also the marker
# The shared apt-cacher-ng earlier versions ran for every sandbox.
LEGACY_APT_CACHER_MARKER = "apt-cacher-ng.pid"


def port_open(address: str, port: int, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections on address:port."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(address: str, port: int, timeout: float, what: str) -> None:
    """Wait until address:port accepts connections; Failed naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while not port_open(address, port):
        if time.monotonic() > deadline:
            raise Failed(f"{what} does not answer on {address}:{port} after {timeout:.0f} s")
        time.sleep(0.2)


# --- apt proxy -------------------------------------------------------------------------------

def apt_proxy_config_path(ident: str) -> Path:
    """The configuration of sandbox `ident`'s apt proxy; its path marks the process."""
    return run_dir() / f"{APT_PROXY_CONFIG}{ident}.json"


def apt_proxy_cache() -> Path:
    """The cache every sandbox's apt proxy shares."""
    return cache_dir() / "apt-proxy"


def apt_proxy_config(address: str, archives: list[str]) -> dict[str, object]:
    """What one sandbox's proxy serves, where it listens and keeps its cache."""
    return {"address": address, "port": APT_PROXY_PORT, "archives": archives,
            "cache": str(apt_proxy_cache())}


def apt_proxy_pids(ident: str) -> list[int]:
    """The running apt proxy processes of sandbox `ident`."""
    return processes.find(str(apt_proxy_config_path(ident)))


def ensure_apt_proxy(ident: str, address: str, log: Path) -> bool:
    """Run sandbox `ident`'s apt proxy on address:APT_PROXY_PORT, serving this machine's
    Debian archives as its apt sources name them now. True if it was (re)started."""
    config_path = apt_proxy_config_path(ident)
    try:
        wanted = apt_proxy_config(address, sources.node_archives())
    except LookupError as exc:
        raise Failed(str(exc)) from None
    try:
        current = json.loads(config_path.read_text())
    except (OSError, ValueError):
        current = None
    if current == wanted and apt_proxy_pids(ident) and port_open(address, APT_PROXY_PORT):
        return False
    stop_apt_proxy(ident)
    if port_open(address, APT_PROXY_PORT):
        raise Failed(f"port {APT_PROXY_PORT} on {address} is taken by another program")
    config_path.write_text(json.dumps(wanted, indent=1) + "\n")
    argv = [sys.executable, "-m", "pifleet.sandbox.aptproxy", str(config_path)]
    pid = processes.spawn(argv, log)
    try:
        wait_port(address, APT_PROXY_PORT, 15, "the apt proxy")
    except Failed:
        if not processes.exists(pid):
            tail = " ".join(log.read_text(errors="replace").splitlines()[-1:])
            raise Failed(f"the apt proxy exited at start: {tail} (see {log})") from None
        raise
    return True


def stop_apt_proxy(ident: str) -> bool:
    """Stop sandbox `ident`'s apt proxy and remove its configuration. True if one ran."""
    pids = apt_proxy_pids(ident)
    if pids:
        processes.stop(pids, timeout=10)
    apt_proxy_config_path(ident).unlink(missing_ok=True)
    return bool(pids)


def apt_proxy_idents() -> set[str]:
    """Sandboxes with an apt proxy configuration or process on this machine."""
    found = {p.name[len(APT_PROXY_CONFIG):-len(".json")]
             for p in run_dir().glob(f"{APT_PROXY_CONFIG}*.json")}
    marker = str(run_dir() / APT_PROXY_CONFIG)
    for pid in processes.find(marker):
        for arg in processes.cmdline(pid):
            if arg.startswith(marker) and arg.endswith(".json"):
                found.add(arg[len(marker):-len(".json")])
    return found


def stop_legacy_apt_cacher() -> bool:
    """Stop the shared apt-cacher-ng an earlier version ran (when the last sandbox goes)."""
    pids = processes.find(f"PidFile={run_dir() / LEGACY_APT_CACHER_MARKER}")
    if pids:
        processes.stop(pids, timeout=10)
    return bool(pids)


# --- package server --------------------------------------------------------------------------

def package_server_argv(packages: Path, address: str) -> list[str]:
    """A plain HTTP file server for `packages`, bound to the bridge address only."""
    return [sys.executable, "-m", "http.server", str(PACKAGES_PORT), "--bind", address,
            "--directory", str(packages)]


def ensure_package_server(packages: Path, address: str, pid_file: Path, log: Path) -> bool:
    """Serve `packages` on http://ADDRESS:8080/. True if it was started now."""
    marker = str(packages)
    if processes.alive(processes.read_pid(pid_file), marker) and port_open(address,
                                                                           PACKAGES_PORT):
        return False
    stop_package_server(packages, pid_file)
    if port_open(address, PACKAGES_PORT):
        raise Failed(f"port {PACKAGES_PORT} on {address} is taken by another program")
    packages.mkdir(parents=True, exist_ok=True)
    processes.spawn(package_server_argv(packages, address), log, pid_file=pid_file)
    wait_port(address, PACKAGES_PORT, 15, "the package server")
    return True


def stop_package_server(packages: Path, pid_file: Path) -> bool:
    """Stop the package server of one sandbox (found by its folder). True if one ran."""
    pids = [p for p in processes.find(str(packages))
            if "http.server" in processes.cmdline(p)]
    if pids:
        processes.stop(pids, timeout=5)
    pid_file.unlink(missing_ok=True)
    return bool(pids)
