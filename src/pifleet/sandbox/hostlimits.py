"""Kernel limits that many nodes on one machine run into, raised while sandboxes run.

Every node's systemd (and its journald, logind, udev...) takes several inotify instances, all
counted against root because the nodes share the host's users. The default limit of 128
inotify instances per user stops the twentieth node or so with "Failed to allocate manager
object: Too many open files". `up` raises the limit for the nodes it runs; the original value
is kept under /run/pifleet and put back when the last sandbox goes down.
"""

from __future__ import annotations

import json
from pathlib import Path

from pifleet.sandbox.registry import run_dir

INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
# Measured: about 7 instances per booted node; keep headroom for the host itself.
PER_NODE = 10
HOST_SHARE = 128
FLOOR = 8192


def needed_instances(total_nodes: int) -> int:
    """The inotify instance limit that `total_nodes` nodes on this machine need."""
    # Every root process of the machine shares this limit, so leave generous room.
    return max(HOST_SHARE + PER_NODE * total_nodes, FLOOR)


def _saved() -> Path:
    return run_dir() / "inotify-max-user-instances.json"


def raise_for(total_nodes: int, proc_file: Path = INOTIFY_INSTANCES) -> int | None:
    """Raise the limit if it is below what `total_nodes` need. Returns the new value, or None."""
    current = int(proc_file.read_text())
    needed = needed_instances(total_nodes)
    if current >= needed:
        return None
    if not _saved().exists():
        _saved().write_text(json.dumps({"original": current}) + "\n")
    proc_file.write_text(f"{needed}\n")
    return needed


def restore(proc_file: Path = INOTIFY_INSTANCES) -> int | None:
    """Put back the value found before the first raise. Returns it, or None if nothing to do."""
    try:
        original = int(json.loads(_saved().read_text())["original"])
    except (OSError, ValueError, KeyError):
        return None
    proc_file.write_text(f"{original}\n")
    _saved().unlink()
    return original
