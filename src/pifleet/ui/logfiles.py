"""Per-node log files: `~/.local/state/pifleet/<fleet>/<node>.log` (XDG_STATE_HOME honoured).

A log keeps what pifleet did on each node (steps, their outcome, duration and message), not
what the nodes printed: output lines are for the terminal that asked for them and may hold
anything (a join token printed by kubeadm, a kubeconfig `cat` by the user). Messages are
redacted of what looks like a credential all the same, and a sandbox's logs go with
`sandbox down`.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from pifleet.events import Event, Status
from pifleet.fleet.logs import log_dir

# What a credential looks like in a message: a kubeadm bootstrap token (facts.md section 3),
# a kubeadm certificate key, a PEM private key, a bearer token or password given as a value.
_SECRETS = [
    (re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b"), "<token>"),
    (re.compile(r"(--certificate-key[= ])[0-9a-fA-F]{64}"), r"\1<key>"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)",
                re.S), "<private key>"),
    (re.compile(r"(?i)(--token[= ]|--password[= ]|\b(?:token|password|passwd|"
                r"client-key-data|client-key)[:=]\s*|\bbearer\s+)[^\s\"',]+"), r"\1<redacted>"),
]


def redact(text: str) -> str:
    """`text` with anything shaped like a credential replaced by a placeholder."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class NodeLogs:
    """A sink that appends every event but output lines to its node's log file (`_local.log`
    for no node)."""

    def __init__(self, fleet_name: str, root: Path | None = None) -> None:
        self.dir = root / fleet_name if root else log_dir(fleet_name)
        self._made = False

    def path(self, node: str | None) -> Path:
        """The log file of `node`."""
        return self.dir / f"{node or '_local'}.log"

    def __call__(self, event: Event) -> None:
        if event.status is Status.OUTPUT:
            return
        if not self._made:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._made = True
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(event.time))
        duration = f" {event.duration:.2f}s" if event.duration is not None else ""
        changed = " changed" if event.changed else ""
        message = f": {redact(event.message)}" if event.message else ""
        line = f"{stamp} {event.phase}/{event.step} {event.status}{changed}{duration}{message}\n"
        # 0600 all the same: a failure message quotes a node's error output.
        fd = os.open(self.path(event.node), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as log:
            log.write(line)
