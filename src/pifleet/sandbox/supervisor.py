"""The per-node supervisor: one daemon per node that plays the node's power supply.

It runs in a mount namespace of its own (started through `unshare --mount`), mounts the node's
overlay there and boots the node with systemd-nspawn. When the node reboots, nspawn exits with
status 133 and the supervisor boots it again; any other exit powers the node off for good. A
SIGTERM shuts the node down cleanly. Because the overlay lives only in the supervisor's mount
namespace, it disappears with the supervisor even after a crash: nothing stays mounted on the
host.

Run as `python -m pifleet.sandbox.supervisor CONFIG.json`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from pifleet.errors import describe
from pifleet.sandbox import cgroups

# systemd-nspawn's exit status when the container asked for a reboot.
REBOOT_STATUS = 133
# Stop restarting if a node keeps "rebooting" faster than this (something is broken).
MIN_BOOT_SECONDS = 2.0
MAX_FAST_REBOOTS = 5


@dataclass(frozen=True)
class NodeRun:
    """What the supervisor needs to boot one node."""

    name: str
    machine: str
    base: str
    upper: str
    work: str
    root: str
    netns: str
    status: str  # a JSON file the supervisor keeps up to date

    def save(self, path: Path) -> None:
        """Write this configuration as JSON."""
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> NodeRun:
        """Read a configuration written by `save`."""
        return cls(**json.loads(path.read_text()))


def mount_argv(run: NodeRun) -> list[str]:
    """The overlay mount of the node's root."""
    options = f"lowerdir={run.base},upperdir={run.upper},workdir={run.work}"
    return ["mount", "-t", "overlay", "overlay", "-o", options, run.root]


def nspawn_argv(run: NodeRun) -> list[str]:
    """systemd-nspawn booting the node inside its network namespace (design.md, measured)."""
    return ["systemd-nspawn", "--quiet", "-D", run.root, "--boot",
            f"--machine={run.machine}", f"--hostname={run.name}",
            f"--network-namespace-path=/run/netns/{run.netns}",
            "--capability=CAP_NET_ADMIN",
            # This host's PID 1 is not systemd: no machine registration, no scope unit.
            "--register=no", "--keep-unit",
            "--resolv-conf=off", "--link-journal=no", "--console=read-only"]


# With this, `sysctl net.*` works inside the node (design.md).
# Each node boots its own overlay root, so nspawn's image lock protects nothing; it would only
# leave lock files in /run when a node is killed.
NSPAWN_ENV = {"SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network", "SYSTEMD_NSPAWN_LOCK": "0"}


class Supervisor:
    """Boots a node again and again while it reboots; stops on SIGTERM or a real power-off."""

    def __init__(self, run: NodeRun) -> None:
        self.run = run
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.boots = 0

    def _status(self, state: str, **extra: object) -> None:
        data = {"state": state, "boots": self.boots, "pid": os.getpid(), "time": time.time(),
                **extra}
        if state == "failed":
            print(f"pifleet-supervisor: {self.run.name}: {extra.get('message')}", flush=True)
        tmp = Path(self.run.status + ".tmp")
        tmp.write_text(json.dumps(data) + "\n")
        os.replace(tmp, self.run.status)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self.child and self.child.poll() is None:
            # nspawn turns SIGTERM into an orderly shutdown of the node's systemd.
            self.child.send_signal(signal.SIGTERM)

    def main(self) -> int:
        """Mount, boot, reboot on 133; returns the exit status to leave with."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            cgroups.enter(self.run.machine)
        except OSError as exc:
            self._status("failed", message=f"cannot create the node's cgroup: {describe(exc)}")
            return 1
        if subprocess.run(mount_argv(self.run), check=False).returncode != 0:
            self._status("failed", message="overlay mount failed")
            return 1
        fast = 0
        while not self.stopping:
            self.boots += 1
            began = time.monotonic()
            self.child = subprocess.Popen(nspawn_argv(self.run), stdin=subprocess.DEVNULL,
                                          env={**os.environ, **NSPAWN_ENV})
            if self.stopping:  # the signal came between the loop test and the start
                self.child.send_signal(signal.SIGTERM)
            self._status("running", nspawn=self.child.pid)
            code = self.child.wait()
            print(f"pifleet-supervisor: {self.run.name}: nspawn exited {code}", flush=True)
            if code != REBOOT_STATUS or self.stopping:
                self._status("stopped", exit=code)
                return 0 if self.stopping else code
            fast = fast + 1 if time.monotonic() - began < MIN_BOOT_SECONDS else 0
            if fast >= MAX_FAST_REBOOTS:
                self._status("failed", exit=code, message="reboot loop")
                return 1
            self._status("rebooting", exit=code)
        self._status("stopped")
        return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m pifleet.sandbox.supervisor CONFIG.json`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pifleet.sandbox.supervisor CONFIG.json", file=sys.stderr)
        return 2
    return Supervisor(NodeRun.load(Path(args[0]))).main()


if __name__ == "__main__":
    sys.exit(main())
