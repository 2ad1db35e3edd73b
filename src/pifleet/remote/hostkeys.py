"""Pinning SSH host keys in the fleet's own known_hosts file.

First contact records each node's host key (trust on first use, as `ssh` with
StrictHostKeyChecking=accept-new); afterwards a different key is refused with both fingerprints,
and every connection pifleet makes checks against this file strictly. k3sup never checks host
keys (facts.md section 7); we always do.
"""

from __future__ import annotations

import base64
import hashlib
import socket
from dataclasses import dataclass
from pathlib import Path

import paramiko

from pifleet.errors import BadInput, Failed
from pifleet.files import atomic_write, locked
from pifleet.fleet import Fleet, Node


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


def pinned_types(known_hosts: Path, address: str, port: int) -> list[str]:
    """The key types pinned for a host (empty before first contact)."""
    if not known_hosts.exists():
        return []
    hosts = paramiko.HostKeys(str(known_hosts))
    return list(hosts.lookup(known_hosts_name(address, port)) or [])


def scan(address: str, port: int, timeout: float = 10.0,
         prefer: list[str] | None = None) -> paramiko.PKey:
    """Fetch the host key a server presents, without authenticating.

    `prefer` puts those key types first, so a server with several host keys shows the one that
    was pinned (as OpenSSH does when it knows the host).
    """
    sock = socket.create_connection((address, port), timeout=timeout)
    transport = paramiko.Transport(sock)
    try:
        if prefer:
            options = transport.get_security_options()
            options.key_types = [t for t in prefer if t in options.key_types] + [
                t for t in options.key_types if t not in prefer]
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
    # Nodes are pinned in parallel, maybe by two pifleet processes.
    with locked(known_hosts):
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
        what = "host key changed" if same_type is not None else "host key type changed"
        raise HostKeyChanged(
            f"{node}: {what} for {name}: pinned {old.get_name()} "
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


def untrusted(fleet: Fleet, nodes: list[Node]) -> list[Node]:
    """The nodes with no host key pinned in the fleet's known_hosts: `trust` has not reached
    them yet. (The fleet key alone proves nothing: a `trust` that reached no node makes it.)"""
    from pifleet.remote.targets import node_port

    known_hosts = fleet.resolve(fleet.ssh.known_hosts)
    try:
        return [n for n in nodes
                if not pinned_types(known_hosts, n.address, node_port(fleet, n))]
    except (paramiko.hostkeys.InvalidHostKey, paramiko.SSHException, ValueError) as exc:
        raise BadInput(f"{known_hosts}: a line is not in known_hosts form (a host, a key type, "
                       "a base64 key): correct it, or remove the file and run `pifleet trust` "
                       "again") from exc


def require_trusted(fleet: Fleet, nodes: list[Node]) -> None:
    """BadInput, before any node is contacted, when some of `nodes` are not trusted yet (no
    pinned host key) or the key that logs in to them is missing."""
    from pifleet.remote.targets import key_target

    missing = untrusted(fleet, nodes)
    if missing:
        names = ", ".join(n.name for n in missing)
        raise BadInput(f"{names}: not trusted yet (no host key pinned in "
                       f"{fleet.resolve(fleet.ssh.known_hosts)}): run `pifleet trust` first")
    for node in nodes:
        key = key_target(fleet, node).key
        if key is not None and not key.exists():
            raise BadInput(f"{node.name}: its SSH key {key} is missing: run `pifleet trust` "
                           "again to install a new one (it logs in with the password once)")
