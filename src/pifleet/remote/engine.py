"""Driving pyinfra through its Python API, one `State` per phase, reporting events.

Traps (design.md): a State cannot be reused, so each phase gets a new one; API mode prints
nothing useful, so events come from its callbacks; pyinfra is parallel only on gevent's
cooperative sockets, so this module patches the process when first imported (the CLI's remote
commands are the only importers). A node that fails is dropped from the phase and the others
carry on: pyinfra raises "No hosts remaining!" only when every node failed, which we absorb.
"""

from __future__ import annotations

import contextlib
import os

from gevent import monkey

if not monkey.is_module_patched("socket"):
    monkey.patch_all()
os.environ.setdefault("PYINFRA_PROGRESS", "off")

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.host import Host
from pyinfra.api.operation import add_op
from pyinfra.api.operations import run_ops
from pyinfra.api.state import BaseStateCallback

from pifleet.events import Emitter, Status

# pyinfra logs through the standard logging module; with no handler Python would print its
# warnings to stderr. Our events are the only output.
logging.getLogger("pyinfra").addHandler(logging.NullHandler())
logging.getLogger("pyinfra").propagate = False
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False


@dataclass(frozen=True)
class Target:
    """One node as pyinfra should reach it."""

    name: str
    address: str
    port: int
    user: str
    key: Path | None = None
    password: str | None = None
    known_hosts: Path | None = None

    def host_data(self) -> dict[str, Any]:
        """pyinfra host data: strict host-key checking against the fleet's known_hosts."""
        data: dict[str, Any] = {
            "ssh_hostname": self.address,
            "ssh_port": self.port,
            "ssh_user": self.user,
            "ssh_strict_host_key_checking": "yes",
            "ssh_connect_retries": 1,
        }
        if self.known_hosts is not None:
            data["ssh_known_hosts_file"] = str(self.known_hosts)
        if self.key is not None:
            data["ssh_key"] = str(self.key)
        if self.password is not None:
            # First contact: password only, never an agent or a stray key of the user's.
            data["ssh_password"] = self.password
            data["ssh_allow_agent"] = False
            data["ssh_look_for_keys"] = False
        return data


@dataclass
class NodeOutcome:
    """How one node fared in a phase."""

    ok: bool = True
    step: str | None = None
    error: str = ""
    changed: bool = False


@dataclass
class PhaseResult:
    """Every node's outcome in one phase."""

    outcomes: dict[str, NodeOutcome] = field(default_factory=dict)

    @property
    def failed(self) -> dict[str, NodeOutcome]:
        """The nodes that failed, by name."""
        return {n: o for n, o in self.outcomes.items() if not o.ok}

    @property
    def succeeded(self) -> list[str]:
        """Names of the nodes that did not fail."""
        return [n for n, o in self.outcomes.items() if o.ok]


class _Reporter(BaseStateCallback):
    """Turns pyinfra's callbacks into pifleet events."""

    def __init__(self, phase: Phase) -> None:
        self.phase = phase
        self.started: dict[tuple[str, str], float] = {}

    def host_connect_error(self, state: State, host: Host, error: object) -> None:  # type: ignore[override]
        self.phase.fail(host.name, "connect", _connect_message(error))

    def operation_host_start(self, state: State, host: Host, op_hash: str) -> None:  # type: ignore[override]
        if op_hash in state.ops[host]:
            self.started[(host.name, op_hash)] = time.monotonic()
            self.phase.emit.emit(host.name, self.phase.name, self.phase.step_of(op_hash),
                                 Status.START)

    def operation_end(self, state: State, op_hash: str) -> None:  # type: ignore[override]
        step = self.phase.step_of(op_hash)
        for host in list(state.inventory):
            began = self.started.pop((host.name, op_hash), None)
            if began is None:
                continue
            meta = state.get_op_data_for_host(host, op_hash).operation_meta
            duration = time.monotonic() - began
            if meta.did_succeed(_raise_if_not_complete=False):
                changed = meta.did_change() and op_hash not in self.phase.checks
                self.phase.outcome(host.name).changed |= changed
                self.phase.emit.emit(host.name, self.phase.name, step, Status.OK,
                                     changed=changed, duration=duration)
            else:
                output = meta.stderr if meta.is_complete() else ""
                if meta.is_complete() and not output.strip():
                    output = meta.stdout
                self.phase.fail(host.name, step, _last_lines(output) or "failed",
                                duration=duration)


class Phase:
    """One phase on some nodes: a fresh pyinfra State, connected, with operations added by name.

    Typical use::

        phase = Phase("trust", targets, emit)
        phase.connect()
        phase.add("authorized key", server.user_authorized_keys, user="pirate", ...)
        result = phase.run()
    """

    def __init__(self, name: str, targets: Iterable[Target], emit: Emitter,
                 connect_timeout: int = 10) -> None:
        self.name = name
        self.emit = emit
        self.targets = {t.name: t for t in targets}
        self.result = PhaseResult({n: NodeOutcome() for n in self.targets})
        self._steps: dict[str, str] = {}
        self.checks: set[str] = set()
        inventory = Inventory(([(t.name, t.host_data()) for t in self.targets.values()], {}))
        config = Config(CONNECT_TIMEOUT=connect_timeout, FAIL_PERCENT=None)
        self.state = State(inventory, config)
        self.state.add_callback_handler(_Reporter(self))

    def outcome(self, node: str) -> NodeOutcome:
        """The running outcome of `node`."""
        return self.result.outcomes[node]

    def fail(self, node: str, step: str, message: str, duration: float | None = None) -> None:
        """Mark `node` failed at `step` (first failure wins) and report it."""
        outcome = self.outcome(node)
        if outcome.ok:
            outcome.ok, outcome.step, outcome.error = False, step, message
        self.emit.emit(node, self.name, step, Status.FAILED, duration=duration, message=message)

    def step_of(self, op_hash: str) -> str:
        """The step name an operation was added under."""
        return self._steps.get(op_hash) or ", ".join(self.state.get_op_meta(op_hash).names)

    def active_hosts(self) -> list[Host]:
        """Connected hosts that have not failed."""
        return [h for h in self.state.inventory.get_active_hosts()
                if self.outcome(h.name).ok]

    def connect(self) -> list[str]:
        """Connect to every node in parallel; return the names of those connected."""
        began = time.monotonic()
        for name in self.targets:
            self.emit.emit(name, self.name, "connect", Status.START)
        # PyinfraError here means every node failed; each was reported by host_connect_error.
        with contextlib.suppress(PyinfraError):
            connect_all(self.state)
        connected = [h.name for h in self.state.activated_hosts]
        for name in self.targets:
            if name in connected:
                self.emit.emit(name, self.name, "connect", Status.OK,
                               duration=time.monotonic() - began)
            elif self.outcome(name).ok:
                self.fail(name, "connect", "could not connect")
        return [n for n in connected if self.outcome(n).ok]

    def add(self, step: str, operation: Callable[..., Any], *args: Any,
            nodes: Iterable[str] | None = None, check: bool = False, **kwargs: Any) -> None:
        """Add `operation` under the step name `step`, on `nodes` (all active by default).

        `check` marks a step that only verifies something: it never reports a change.

        pyinfra runs an operation's fact gathering while adding it; a node whose facts fail
        is marked failed here and left out of the rest of the phase.
        """
        wanted = set(nodes) if nodes is not None else None
        for host in self.active_hosts():
            if wanted is not None and host.name not in wanted:
                continue
            try:
                results = add_op(self.state, operation, *args, host=host, name=step, **kwargs)
            except Exception as exc:  # fact errors surface as many exception types
                self.fail(host.name, step, _last_lines(str(exc)) or type(exc).__name__)
                continue
            for meta in results.values():
                self._steps[meta._hash] = step
                if check:
                    self.checks.add(meta._hash)

    def run(self) -> PhaseResult:
        """Run the added operations on every node in parallel, then disconnect."""
        try:
            run_ops(self.state)
        except PyinfraError:
            pass  # all remaining nodes failed: each was reported through the callbacks
        finally:
            disconnect_all(self.state)
        return self.result

    def close(self) -> None:
        """Disconnect without running anything."""
        disconnect_all(self.state)


def _last_lines(text: str, count: int = 6) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])


def _connect_message(error: object) -> str:
    text = str(error)
    if "Authentication" in text:
        return f"authentication refused ({text})"
    return text or type(error).__name__
