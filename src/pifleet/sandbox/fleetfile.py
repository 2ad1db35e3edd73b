"""The fleet file `sandbox up` writes: the sandbox's nodes, ready for `pifleet trust`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pifleet.fleet.model import Fleet
from pifleet.sandbox.fsutil import write_file
from pifleet.sandbox.standin import DEFAULT_VERSION, repository_templates
from pifleet.sandbox.state import Sandbox

HEADER = """\
# Fleet of virtual Raspberry Pis made by `pifleet sandbox up` in this folder.
# `pifleet sandbox down --dir {directory}` removes them and this file.
"""


def is_ours(path: Path) -> bool:
    """True if `path` is a fleet file written by `sandbox up` (so it may be replaced)."""
    try:
        return path.read_text().startswith(HEADER.splitlines()[0])
    except OSError:
        return False


def fleet_name(ident: str) -> str:
    """The name of the fleet a sandbox's fleet file describes (it names its log folder)."""
    return f"sandbox-{ident}"


def fleet_data(sandbox: Sandbox, mirror: str | None) -> dict[str, Any]:
    """The fleet file's content as plain data."""
    # The stand-in's repository is served from DIR/packages, laid out like pkgs.k8s.io, so
    # only the host part of the URLs differs from the real ones.
    repository, key = repository_templates(sandbox.packages_url)
    return {
        "name": fleet_name(sandbox.ident),
        "nodes": [{"name": n.name, "address": n.address, "role": n.role}
                  for n in sandbox.nodes],
        "ssh": {"user": sandbox.ssh_user, "password": sandbox.ssh_password},
        "kubernetes": {
            "version": DEFAULT_VERSION,
            "package_repository": repository,
            "package_key_url": key,
        },
        "apt": {"mirror": mirror, "proxy": sandbox.apt_proxy_url},
    }


def render(sandbox: Sandbox, mirror: str | None) -> str:
    """The fleet file text, checked against the fleet model first."""
    data = fleet_data(sandbox, mirror)
    Fleet.model_validate(data)  # never hand out a file pifleet itself would reject
    return HEADER.format(directory=sandbox.directory) + yaml.safe_dump(
        data, sort_keys=False, default_flow_style=False)


def write(sandbox: Sandbox, mirror: str | None) -> None:
    """Write DIR/fleet.yaml, readable by its owner only: it holds the nodes' password."""
    write_file(sandbox.fleet_path, render(sandbox, mirror), 0o600)
