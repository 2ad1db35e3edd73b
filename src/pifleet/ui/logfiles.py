"""Per-node log files: `~/.local/state/pifleet/<fleet>/<node>.log` (XDG_STATE_HOME honoured)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pifleet.events import Event


def state_dir() -> Path:
    """pifleet's user state directory."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "pifleet"


class NodeLogs:
    """A sink that appends every event to its node's log file (`_local.log` for no node)."""

    def __init__(self, fleet_name: str, root: Path | None = None) -> None:
        self.dir = (root or state_dir()) / fleet_name
        self._made = False

    def path(self, node: str | None) -> Path:
        """The log file of `node`."""
        return self.dir / f"{node or '_local'}.log"

    def __call__(self, event: Event) -> None:
        if not self._made:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._made = True
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(event.time))
        duration = f" {event.duration:.2f}s" if event.duration is not None else ""
        changed = " changed" if event.changed else ""
        line = (f"{stamp} {event.phase}/{event.step} {event.status}{changed}{duration}"
                f"{': ' + event.message if event.message else ''}\n")
        # 0600: a node's output lines can be anything the user ran, a kubeconfig included.
        fd = os.open(self.path(event.node), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as log:
            log.write(line)
