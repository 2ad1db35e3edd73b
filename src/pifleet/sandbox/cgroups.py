"""A control group of its own for every node.

systemd-nspawn with --keep-unit puts a node in the cgroup it was started from and creates its
`payload` and `supervisor` groups there. On a host whose PID 1 is not systemd, every node
would be started from the same cgroup, so every node's systemd would build (and tear down)
its services' groups in one shared tree, and nodes would fail at random to start services
("Failed to attach to cgroup ... No such file or directory"). The supervisor therefore moves
itself into `pifleet-sandbox/MACHINE` in each hierarchy systemd tracks processes in (the
named `systemd` v1 hierarchy and the cgroup2 one) before it starts nspawn.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pifleet.sandbox.fsutil import MOUNTINFO

PARENT = "pifleet-sandbox"


def tracking_hierarchies(mountinfo: str) -> list[Path]:
    """Mount points of the cgroup hierarchies systemd uses: cgroup2 and v1 `name=systemd`."""
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line:
            continue
        after = line.split(" - ", 1)[1].split()
        fstype, options = after[0], after[2] if len(after) > 2 else ""
        if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in options.split(",")):
            found.append(Path(fields[4]))
    return found


def node_groups(machine: str, mountinfo: Path = MOUNTINFO) -> list[Path]:
    """The node's own cgroup in every tracking hierarchy."""
    return [mount / PARENT / machine for mount in tracking_hierarchies(mountinfo.read_text())]


def enter(machine: str, pid: int | None = None, mountinfo: Path = MOUNTINFO) -> list[Path]:
    """Move `pid` (default: this process) into the node's own cgroups. Returns them."""
    groups = node_groups(machine, mountinfo)
    for group in groups:
        for attempt in range(5):
            try:
                group.mkdir(parents=True, exist_ok=True)
                (group / "cgroup.procs").write_text(f"{pid or os.getpid()}\n")
                break
            except FileNotFoundError:
                # The shared parent went away under us (the last sandbox's `down`): again.
                if attempt == 4:
                    raise
    return groups


def _remove_tree(group: Path) -> list[Path]:
    left = []
    # Deepest first: a cgroup directory can only go once it has no children.
    for folder, _, _ in sorted(os.walk(group), key=lambda w: -len(w[0])):
        try:
            os.rmdir(folder)
        except OSError:
            left.append(Path(folder))
    return left


def remove(prefix: str, mountinfo: Path = MOUNTINFO) -> list[Path]:
    """Delete the cgroups of stopped nodes whose machine name starts with `prefix`.

    Only for nodes known to be stopped: an idle service's empty group inside a running node
    would go too. Returns the groups that could not be removed (still holding processes).
    """
    left = []
    for mount in tracking_hierarchies(mountinfo.read_text()):
        for group in (mount / PARENT).glob(prefix + "*"):
            left += _remove_tree(group)
    return left


def pids_in(groups: list[Path]) -> list[int]:
    """The processes still in `groups` and the groups below them."""
    pids: set[int] = set()
    for group in groups:
        for procs in [group / "cgroup.procs", *group.rglob("cgroup.procs")]:
            with contextlib.suppress(OSError):
                pids.update(int(line) for line in procs.read_text().split() if line.isdigit())
    return sorted(pids)


def remove_node(machine: str, mountinfo: Path = MOUNTINFO) -> list[Path]:
    """Delete one stopped node's cgroups (leftovers of a crash) before it boots again."""
    left = []
    for group in node_groups(machine, mountinfo):
        if group.is_dir():
            left += _remove_tree(group)
    return left


def remove_parent(mountinfo: Path = MOUNTINFO) -> None:
    """Delete the shared parent groups if empty (when the last sandbox goes down)."""
    for mount in tracking_hierarchies(mountinfo.read_text()):
        with contextlib.suppress(OSError):
            (mount / PARENT).rmdir()
