"""The fleet's own SSH key: one ed25519 key pair per fleet, made here, never shared.

The practical hands every student the same private key from a public repository; pifleet makes
a fresh key per fleet, keeps it 0600 beside the fleet file, and never sends the private half.
"""

from __future__ import annotations

import socket
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pifleet.errors import BadInput
from pifleet.files import atomic_write
from pifleet.fleet import Fleet


def key_paths(fleet: Fleet) -> tuple[Path, Path]:
    """The fleet's private and public key paths."""
    private = fleet.resolve(fleet.ssh.private_key)
    return private, private.with_name(private.name + ".pub")


def ensure_key(fleet: Fleet) -> Path:
    """Create the fleet's key pair if it is missing; return the public key's path.

    An existing private key is kept (its public half is rewritten if lost). The private key is
    written atomically with mode 0600, in OpenSSH format so `ssh -i` works with it too.
    """
    private, public = key_paths(fleet)
    if private.exists():
        if not public.exists():
            key = serialization.load_ssh_private_key(private.read_bytes(), password=None)
            atomic_write(public, _public_line(key.public_key(), fleet.name), mode=0o644)
        return public
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption())
    atomic_write(private, pem, mode=0o600)
    atomic_write(public, _public_line(key.public_key(), fleet.name), mode=0o644)
    return public


def public_key_line(fleet: Fleet, private: Path | None = None) -> str:
    """The `ssh-ed25519 AAAA... comment` line to install for a private key.

    The fleet's own key by default (created if missing); a node's own key (an `ssh.private_key`
    override) is read, never created, with its public half derived from it.
    """
    if private is None or private == key_paths(fleet)[0]:
        return ensure_key(fleet).read_text().strip()
    try:
        key = serialization.load_ssh_private_key(private.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot use private key {private}: {exc}") from exc
    return _public_line(key.public_key(), fleet.name).strip()


def _public_line(public_key: object, fleet_name: str) -> str:
    raw = public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    return f"{raw} pifleet-{fleet_name}@{socket.gethostname()}\n"
