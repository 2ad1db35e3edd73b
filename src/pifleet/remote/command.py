"""`pifleet run`: one shell command line on many nodes at once, output streamed line by line.

The command line goes to the node's sshd unchanged, so the user's login shell interprets it
exactly as `ssh host CMD` would. Each output line becomes one event as soon as it is complete.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import gevent

from pifleet.events import Emitter, Status
from pifleet.fleet import Fleet, Node
from pifleet.remote.engine import Phase, PhaseResult
from pifleet.remote.targets import key_target

PHASE = "run"
STEP = "command"


@dataclass(frozen=True)
class CommandResult:
    """A node's exit status (None when the connection dropped before one arrived)."""

    node: str
    exit_status: int | None


def run_command(fleet: Fleet, nodes: list[Node], command: str, emit: Emitter,
                timeout: float | None = None) -> PhaseResult:
    """Run `command` on `nodes` in parallel; every output line is an OUTPUT event."""
    phase = Phase(PHASE, [key_target(fleet, n) for n in nodes], emit)
    phase.connect()
    jobs = [gevent.spawn(_run_on_host, phase, host, command, timeout)
            for host in phase.active_hosts()]
    gevent.joinall(jobs)
    phase.close()
    return phase.result


def _run_on_host(phase: Phase, host: object, command: str, timeout: float | None) -> None:
    name: str = host.name  # type: ignore[attr-defined]
    client = host.connector.client  # type: ignore[attr-defined]
    emit = phase.emit
    emit.emit(name, PHASE, STEP, Status.START, message=command)
    began = time.monotonic()
    try:
        _stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
        _stdin.close()
        readers = [gevent.spawn(_stream_lines, emit, name, stream) for stream in (stdout, stderr)]
        gevent.joinall(readers, raise_error=True)
        status = stdout.channel.recv_exit_status()
    except Exception as exc:  # paramiko raises socket, SSH and timeout errors alike
        phase.fail(name, STEP, f"{type(exc).__name__}: {exc}", time.monotonic() - began)
        return
    duration = time.monotonic() - began
    if status == 0:
        emit.emit(name, PHASE, STEP, Status.OK, changed=True, duration=duration,
                  message="exit status 0")
    elif status == -1:
        phase.fail(name, STEP, "the connection closed before the command finished "
                   "(the node rebooted or went down?)", duration)
    else:
        phase.fail(name, STEP, f"exit status {status}", duration)


def _stream_lines(emit: Emitter, node: str, stream: Iterable[bytes | str]) -> None:
    for raw in stream:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        emit.emit(node, PHASE, "output", Status.OUTPUT, message=text.rstrip("\r\n"))


def wait_for_nodes(fleet: Fleet, nodes: list[Node], emit: Emitter, timeout: float = 300,
                   interval: float = 2.0) -> PhaseResult:
    """Wait until every node accepts a key login again (after a reboot); fail those that don't."""
    deadline = time.monotonic() + timeout
    pending = list(nodes)
    result = PhaseResult()
    quiet = Emitter()
    while pending:
        phase = Phase("wait", [key_target(fleet, n) for n in pending], quiet, connect_timeout=5)
        up = set(phase.connect())
        phase.close()
        for node in [n for n in pending if n.name in up]:
            emit.emit(node.name, "wait", "ssh", Status.OK)
            result.outcomes[node.name] = phase.outcome(node.name)
        pending = [n for n in pending if n.name not in up]
        if pending and time.monotonic() > deadline:
            for node in pending:
                outcome = phase.outcome(node.name)
                emit.emit(node.name, "wait", "ssh", Status.FAILED,
                          message=f"not back after {timeout:.0f}s: {outcome.error}")
                result.outcomes[node.name] = outcome
            break
        if pending:
            time.sleep(interval)
    return result
