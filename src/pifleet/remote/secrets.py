"""The fleet's secrets file (`.pifleet/secrets.yaml`, mode 0600): passwords pifleet set.

Nothing here is ever printed unless the user asks for that one value.
"""

from __future__ import annotations

import yaml

from pifleet.errors import BadInput
from pifleet.files import atomic_write, locked
from pifleet.fleet import Fleet


def load_secrets(fleet: Fleet) -> dict[str, dict[str, str]]:
    """All secrets, keyed by node name then by secret name (empty if there are none yet)."""
    path = fleet.secrets_path
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    return {str(k): dict(v) for k, v in data.get("nodes", {}).items()}


def set_secret(fleet: Fleet, node: str, name: str, value: str) -> None:
    """Record one node's secret, rewriting the file atomically with mode 0600."""
    with locked(fleet.secrets_path):  # two `trust --harden` runs must not lose a password
        secrets = load_secrets(fleet)
        secrets.setdefault(node, {})[name] = value
        text = "# pifleet secrets: keep private (mode 0600)\n" + yaml.safe_dump(
            {"nodes": secrets}, sort_keys=True)
        atomic_write(fleet.secrets_path, text, mode=0o600)


def get_secret(fleet: Fleet, node: str, name: str) -> str | None:
    """One node's secret, or None."""
    return load_secrets(fleet).get(node, {}).get(name)


def require_secret(fleet: Fleet, node: str, name: str, hint: str) -> str:
    """One node's secret; BadInput naming the node and the file when there is none."""
    value = get_secret(fleet, fleet.node(node).name, name)
    if value is None:
        raise BadInput(f"{node}: no {name} recorded in {fleet.secrets_path} ({hint})")
    return value
