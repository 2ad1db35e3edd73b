"""Writing a new fleet file (`pifleet init`): build, render, validate as read back, then write."""

from __future__ import annotations

import re
import stat
from collections.abc import Sequence
from pathlib import Path

from pifleet.errors import BadInput
from pifleet.files import atomic_write
from pifleet.fleet.load import parse_fleet
from pifleet.fleet.model import (
    AptSettings,
    Fleet,
    FleetFileError,
    KubernetesSettings,
    Node,
    NodeSSH,
    SSHSettings,
)
from pifleet.fleet.template import render_fleet

NEW_FILE_MODE = 0o644


def default_fleet_name(path: Path | str) -> str:
    """A fleet name from the folder of the file (`~/ship-lab/fleet.yaml` -> `ship-lab`)."""
    folder = Path(path).resolve().parent.name
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", folder).strip("-.")[:63]
    return name or "pifleet"


def parse_node_spec(spec: str) -> tuple[str, str]:
    """`NAME=ADDRESS` -> (name, address); BadInput saying what to write otherwise."""
    name, sep, address = spec.partition("=")
    if not sep or not name.strip() or not address.strip():
        raise BadInput(f"--node {spec!r}: write NAME=ADDRESS, e.g. --node laperouse=192.168.1.10")
    return name.strip(), address.strip()


def refuse_overwrite(path: Path | str, force: bool) -> None:
    """BadInput when `path` exists and `force` is not set."""
    if not force and Path(path).exists():
        raise BadInput(f"{path} already exists: pass --force to replace it, or write another "
                       "file with --fleet FILE")


def new_fleet_text(path: Path | str, name: str, nodes: Sequence[tuple[str, str]],
                   control_plane: str | None = None) -> str:
    """The commented fleet file for these nodes, checked exactly as `load_fleet` will read it.

    The first node is the control plane unless `control_plane` names another. Any problem is
    BadInput listing every one of them.
    """
    if not nodes:
        raise BadInput("a fleet needs at least one node: give --node NAME=ADDRESS")
    names = [n for n, _ in nodes]
    plane = control_plane if control_plane is not None else names[0]
    if plane not in names:
        raise BadInput(f"--control-plane {plane}: no such node (nodes: {', '.join(names)})")
    # Built unchecked on purpose: the rendered text is what gets checked, with every problem.
    fleet = Fleet.model_construct(
        name=name,
        nodes=[Node.model_construct(name=n, address=a, ssh=NodeSSH(), tower=None, team=None,
                                    role="control-plane" if n == plane else "worker")
               for n, a in nodes],
        ssh=SSHSettings(), kubernetes=KubernetesSettings(), apt=AptSettings())
    text = render_fleet(fleet)
    try:
        parse_fleet(text, path)
    except FleetFileError as exc:
        lines = "\n".join(f"  {p.message}" for p in exc.problems)
        raise BadInput(f"nothing written to {path}, the fleet would not be valid:\n{lines}") \
            from None
    return text


def write_fleet_file(path: Path | str, text: str, *, force: bool = False) -> Fleet:
    """Write `text` to `path` atomically (refusing to replace a file unless `force`)."""
    path = Path(path)
    refuse_overwrite(path, force)
    fleet = parse_fleet(text, path)
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else NEW_FILE_MODE
    atomic_write(path, text, mode=mode)
    return fleet
