"""The one event type every layer emits, and the sinks that receive it.

The live display, `--json`, the end-of-run summary and the per-node log files are all renderers
of this one stream. Secrets (tokens, passwords, private keys, kubeconfig contents) never enter an
event: whoever builds one is responsible for that.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Where a step stands. `output` carries one line a node printed."""

    START = "start"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    OUTPUT = "output"
    INFO = "info"


@dataclass(frozen=True)
class Event:
    """One thing that happened on one node (or on the local machine when `node` is None)."""

    node: str | None
    phase: str
    step: str
    status: Status
    changed: bool = False
    duration: float | None = None
    message: str = ""
    time: float = field(default_factory=time.time, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The `--json` form: the contract's seven keys plus a timestamp."""
        data = asdict(self)
        data["status"] = str(self.status)
        return data


Sink = Callable[[Event], None]


class Emitter:
    """Fans events out to sinks and remembers failures for the end-of-run summary."""

    def __init__(self, *sinks: Sink) -> None:
        self.sinks: list[Sink] = list(sinks)
        self.failures: list[Event] = []

    def add(self, sink: Sink) -> None:
        """Add a sink that receives every later event."""
        self.sinks.append(sink)

    def close(self) -> None:
        """Let every sink that holds something (a live display, a terminal) let go of it."""
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __call__(self, event: Event) -> None:
        if event.status is Status.FAILED:
            self.failures.append(event)
        for sink in self.sinks:
            sink(event)

    def emit(
        self,
        node: str | None,
        phase: str,
        step: str,
        status: Status,
        *,
        changed: bool = False,
        duration: float | None = None,
        message: str = "",
    ) -> None:
        """Build an event from its parts and send it."""
        self(Event(node, phase, step, status, changed, duration, message))

    @contextmanager
    def step(self, node: str | None, phase: str, step: str) -> Iterator[StepResult]:
        """Report the start and end of a step; an exception marks it failed and propagates."""
        result = StepResult()
        self.emit(node, phase, step, Status.START)
        began = time.monotonic()
        try:
            yield result
        except Exception as exc:
            self.emit(node, phase, step, Status.FAILED, duration=time.monotonic() - began,
                      message=str(exc) or type(exc).__name__)
            raise
        status = Status.SKIPPED if result.skipped else Status.OK
        self.emit(node, phase, step, status, changed=result.changed,
                  duration=time.monotonic() - began, message=result.message)


@dataclass
class StepResult:
    """What a step says about itself before it ends."""

    changed: bool = False
    skipped: bool = False
    message: str = ""
