"""Pinning SSH host keys in the fleet's own known_hosts file.

First contact records each node's host key (trust on first use, as `ssh` with
StrictHostKeyChecking=accept-new); afterwards a different key is refused with both fingerprints,
and every connection pifleet makes checks against this file strictly. k3sup never checks host
keys (facts.md section 7); we always do.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import paramiko

from pifleet.errors import Failed
from pifleet.files import atomic_write

_PIN_LOCK = threading.Lock()


class HostKeyChanged(Failed):
    """The node presents a host key other than the one pinned for it."""


@dataclass(frozen=True)
class PinResult:
    """What pinning found: whether the key was new, and its fingerprint."""

    new: bool
    fingerprint: str


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's form: `SHA256:` and the unpadded base64 of the key blob's SHA-256."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(address: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts: bare for port 22, `[addr]:port` otherwise."""
    return address if port == 22 else f"[{address}]:{port}"


def scan(address: str, port: int, timeout: float = 10.0) -> paramiko.PKey:
    """Fetch the host key a server presents, without authenticating."""
    sock = socket.create_connection((address, port), timeout=timeout)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    finally:
        transport.close()


def pin(node: str, address: str, port: int, known_hosts: Path,
        key: paramiko.PKey | None = None) -> PinResult:
    """Record `node`'s host key on first contact; raise HostKeyChanged if it differs later.

    `key` is the key the server presented (scanned when not given).
    """
    key = key or scan(address, port)
    name = known_hosts_name(address, port)
    known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Nodes are pinned in parallel, maybe by two pifleet processes: serialise the
    # read-modify-write of the file.
    with _PIN_LOCK, open(known_hosts.with_name(known_hosts.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _pin_locked(node, name, key, known_hosts)


def _pin_locked(node: str, name: str, key: paramiko.PKey, known_hosts: Path) -> PinResult:
    hosts = paramiko.HostKeys()
    if known_hosts.exists():
        hosts.load(str(known_hosts))
    pinned = hosts.lookup(name)
    if pinned:
        same_type = pinned.get(key.get_name())
        if same_type is not None and same_type == key:
            return PinResult(False, fingerprint(key))
        old = same_type or next(iter(pinned.values()))
        raise HostKeyChanged(
            f"{node}: host key changed for {name}: pinned {old.get_name()} "
            f"{fingerprint(old)} in {known_hosts}, but the node now presents "
            f"{key.get_name()} {fingerprint(key)}. If the node was reinstalled, remove its line "
            f"with: ssh-keygen -f {known_hosts} -R '{name}'"
        )
    lines = known_hosts.read_text() if known_hosts.exists() else ""
    if lines and not lines.endswith("\n"):
        lines += "\n"
    lines += f"{name} {key.get_name()} {key.get_base64()}\n"
    atomic_write(known_hosts, lines, mode=0o600)
    return PinResult(True, fingerprint(key))
