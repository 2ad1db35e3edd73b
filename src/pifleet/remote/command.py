"""`pifleet run`: one shell command line on many nodes at once, output streamed line by line.

The command line goes to the node's sshd unchanged, so the user's login shell interprets it
exactly as `ssh host CMD` would. Each output line becomes one event as soon as it is complete.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import gevent

from pifleet.events import Emitter, Status
from pifleet.fleet import Fleet, Node
from pifleet.remote.engine import Phase, PhaseResult
from pifleet.remote.targets import key_target

PHASE = "run"
STEP = "command"


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
    channel = None
    try:
        expired = TimeoutError(f"no exit status after {timeout:g} s" if timeout else "")
        with gevent.Timeout(timeout, expired):
            channel = client.get_transport().open_session()
            channel.exec_command(command)
            channel.shutdown_write()  # no stdin, as `ssh host CMD < /dev/null`
            # Binary streams: a node may print anything, and a line that is not UTF-8 is
            # still a line of output, not a failure.
            streams = (channel.makefile("rb"), channel.makefile_stderr("rb"))
            readers = [gevent.spawn(_stream_lines, emit, name, stream) for stream in streams]
            try:
                gevent.joinall(readers, raise_error=True)
            finally:
                gevent.killall(readers)
            status = channel.recv_exit_status()
    except (Exception, gevent.Timeout) as exc:  # socket, SSH and timeout errors alike
        if channel is not None:
            channel.close()
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


def _stream_lines(emit: Emitter, node: str, stream: Iterable[bytes]) -> None:
    for raw in stream:
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        emit.emit(node, PHASE, "output", Status.OUTPUT, message=text)

