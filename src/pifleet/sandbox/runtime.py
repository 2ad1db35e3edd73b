"""What `up`, `down` and `list` share: where a node's supervisor is, whether it runs, how to
wait for a node's sshd, and what other sandboxes on this machine hold.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pifleet.errors import Failed, plain_text
from pifleet.sandbox import network, processes, registry
from pifleet.sandbox.addresses import Plan
from pifleet.sandbox.commands import run
from pifleet.sandbox.naming import Names
from pifleet.sandbox.state import load, node_dir

PHASE = "sandbox"
SSH_PORT = 22
# How long a node may take to boot before its sshd must answer.
BOOT_SECONDS = 90.0


def supervisor_config(directory: Path, name: str) -> Path:
    """The node's supervisor configuration (its path also marks the supervisor's argv)."""
    return node_dir(directory, name) / "run.json"


def supervisor_pid(directory: Path, name: str) -> int | None:
    """The node's supervisor pid if it is alive."""
    pid = processes.read_pid(node_dir(directory, name) / "supervisor.pid")
    marker = str(supervisor_config(directory, name))
    return pid if processes.alive(pid, marker) else None


def ssh_banner(address: str, timeout: float = 2.0) -> bool:
    """True when an SSH server greets on address:22."""
    try:
        with socket.create_connection((address, SSH_PORT), timeout=timeout) as conn:
            conn.settimeout(timeout)
            return conn.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def wait_ssh(address: str, timeout: float, running: Callable[[], bool] = lambda: True) -> None:
    """Wait for sshd on `address`; Failed after `timeout` s, or at once when `running()` fails."""
    deadline = time.monotonic() + timeout
    while not ssh_banner(address):
        if not running():
            raise Failed(f"the node powered off before sshd answered on {address}")
        if time.monotonic() > deadline:
            raise Failed(f"sshd on {address} did not answer within {timeout:.0f} s")
        time.sleep(0.5)


def console_tail(directory: Path, name: str, lines: int = 3) -> str:
    """The last lines a node printed on its console (for error messages), as plain text:
    systemd colours its boot messages, and those codes must not end up in an error."""
    try:
        text = (node_dir(directory, name) / "console.log").read_text(errors="replace")
    except OSError:
        return ""
    kept = [plain_text(line).strip() for line in text.splitlines()]
    return " / ".join([line for line in kept if line][-lines:])


def _status(directory: Path, name: str) -> dict[str, Any]:
    try:
        data = json.loads((node_dir(directory, name) / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def still_booting(directory: Path, name: str) -> bool:
    """Whether the node's systemd is still starting up, as `systemctl is-system-running` says
    inside it (when that cannot be asked: whether it booted less than BOOT_SECONDS ago)."""
    status = _status(directory, name)
    init = _child_pid(status.get("nspawn"))
    if init is not None:
        try:
            state = run(["nsenter", "-t", str(init), "-m", "-u", "-i", "-n", "-p", "--",
                         "systemctl", "is-system-running"], check=False, timeout=10
                        ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            state = ""
        if state:
            return state in ("initializing", "starting")
    booted = status.get("time")
    return isinstance(booted, int | float) and time.time() - booted < BOOT_SECONDS


def _child_pid(pid: object) -> int | None:
    """The first child of `pid` (the node's init, for nspawn's pid)."""
    if not isinstance(pid, int):
        return None
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def live_bridge_addresses(exclude: str) -> list[str]:
    """Bridge addresses of other registered sandboxes whose bridge exists."""
    present = set(network.link_names())
    return [str(Plan(e.slot).bridge) for e in registry.entries()
            if e.ident != exclude and Names(e.ident).bridge in present]


def nodes_on_machine() -> int:
    """How many nodes all registered sandboxes have together."""
    total = 0
    for entry in registry.entries():
        record = load(Path(entry.directory))
        total += len(record.nodes) if record else 0
    return total
