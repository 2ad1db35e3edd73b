"""What `up`, `down` and `list` share: where a node's supervisor is, whether it runs, how to
wait for a node's sshd, and what other sandboxes on this machine hold.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

from pifleet.errors import Failed
from pifleet.sandbox import network, processes, registry
from pifleet.sandbox.addresses import Plan
from pifleet.sandbox.naming import Names
from pifleet.sandbox.state import load, node_dir

PHASE = "sandbox"
SSH_PORT = 22


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
    """The last lines a node printed on its console (for error messages)."""
    try:
        text = (node_dir(directory, name) / "console.log").read_text(errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " / ".join(kept)


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
