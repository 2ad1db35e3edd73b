"""Host services of the sandbox, started as plain processes (this machine's PID 1 is not
systemd): the apt proxy that all sandboxes share, and each sandbox's package server.

The apt proxy (apt-cacher-ng) listens on the bridge address of every running sandbox and
nowhere else; when a new sandbox comes up it is restarted with the longer address list. Nodes
retry apt downloads (see nodefiles.apt_conf), so the short restart does not fail them.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

from pifleet.errors import Failed
from pifleet.sandbox import processes
from pifleet.sandbox.registry import run_dir
from pifleet.sandbox.rootfs import cache_dir

APT_PROXY_PORT = 3142
PACKAGES_PORT = 8080


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

def _proxy_state_path() -> Path:
    return run_dir() / "apt-cacher-ng.json"


def _proxy_marker() -> str:
    # Unique to our instance: a Debian-managed apt-cacher-ng has other paths.
    return f"PidFile={run_dir() / 'apt-cacher-ng.pid'}"


def apt_proxy_config(addresses: list[str]) -> str:
    """Our own apt-cacher-ng configuration: bound to the bridges, cache in our cache folder.

    It defines no remapping: the proxy fetches exactly the URLs nodes ask for, and nodes ask
    for this machine's own mirror (the package's default backends may not be reachable).
    """
    cache = cache_dir() / "apt-cacher-ng"
    return (f"CacheDir: {cache / 'cache'}\n"
            f"LogDir: {cache / 'log'}\n"
            "SupportDir: /usr/lib/apt-cacher-ng\n"
            f"Port: {APT_PROXY_PORT}\n"
            f"BindAddress: {' '.join(addresses)}\n"
            f"SocketPath: {run_dir() / 'apt-cacher-ng.socket'}\n"
            "ReportPage: acng-report.html\n"
            "ExThreshold: 4\n"
            # Nothing but plain fetches of what nodes ask for: no CONNECT tunnels, no
            # redirects to other hosts, no bug-tracker forwarding (the package's defaults allow
            # all three).
            "PassThroughPattern: ^$\n"
            "RedirMax: 0\n"
            "ForwardBtsSoap: 0\n")


def apt_proxy_argv(config_dir: Path) -> list[str]:
    """apt-cacher-ng in the foreground with our configuration folder only."""
    return ["apt-cacher-ng", "-c", str(config_dir), "ForeGround=1", _proxy_marker()]


def apt_proxy_state() -> tuple[int | None, list[str]]:
    """(pid if our apt proxy runs, the addresses it was started with)."""
    try:
        data = json.loads(_proxy_state_path().read_text())
    except (OSError, ValueError):
        return None, []
    pid = data.get("pid")
    if not processes.alive(pid, _proxy_marker()):
        return None, []
    return pid, list(data.get("addresses", []))


def ensure_apt_proxy(addresses: list[str], needed: str) -> bool:
    """Run the proxy on `addresses`, restarting it unless it already serves `needed`.

    Call with the machine lock held. True if it was (re)started.
    """
    pid, serving = apt_proxy_state()
    if pid and needed in serving and port_open(needed, APT_PROXY_PORT):
        return False
    stop_apt_proxy()
    if port_open(needed, APT_PROXY_PORT):
        raise Failed(f"port {APT_PROXY_PORT} on {needed} is taken by another program "
                     "(a system apt-cacher-ng listening on all addresses?): stop it first")
    for folder in ("cache", "log"):
        (cache_dir() / "apt-cacher-ng" / folder).mkdir(parents=True, exist_ok=True)
    addresses = sorted(set(addresses) | {needed})
    log = cache_dir() / "apt-cacher-ng" / "daemon.log"
    config_dir = run_dir() / "apt-cacher-ng.conf.d"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "acng.conf").write_text(apt_proxy_config(addresses))
    pid = processes.spawn(apt_proxy_argv(config_dir), log)
    _proxy_state_path().write_text(json.dumps({"pid": pid, "addresses": addresses}) + "\n")
    wait_port(needed, APT_PROXY_PORT, 15, "the apt proxy (apt-cacher-ng)")
    if not processes.alive(pid, _proxy_marker()):
        raise Failed(f"the apt proxy (apt-cacher-ng) exited at start; see {log}")
    return True


def stop_apt_proxy() -> bool:
    """Stop our apt proxy (and any leftover instance of it). True if one was running."""
    pids = processes.find(_proxy_marker())
    if pids:
        processes.stop(pids, timeout=10)
    _proxy_state_path().unlink(missing_ok=True)
    for leftover in ("apt-cacher-ng.pid", "apt-cacher-ng.socket"):
        (run_dir() / leftover).unlink(missing_ok=True)
    config_dir = run_dir() / "apt-cacher-ng.conf.d"
    (config_dir / "acng.conf").unlink(missing_ok=True)
    if config_dir.is_dir() and not any(config_dir.iterdir()):
        config_dir.rmdir()
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
