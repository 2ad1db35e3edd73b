"""Renderers of the event stream: live display, JSON lines, per-node log files."""

from __future__ import annotations

from rich.console import Console

from pifleet.events import Emitter
from pifleet.ui.jsonlines import JsonLines
from pifleet.ui.live import LiveDisplay
from pifleet.ui.logfiles import NodeLogs

__all__ = ["JsonLines", "LiveDisplay", "NodeLogs", "make_emitter"]


def make_emitter(progress: Console, output: Console, *, json_output: bool, verbose: int = 0,
                 live: bool = True, log_name: str | None = None,
                 show_steps: bool = True) -> Emitter:
    """An Emitter for a command: JSON lines or the live display, plus per-node logs.

    `progress` receives the live table and step lines, `output` the nodes' output lines.
    `log_name` names the log folder (the fleet's name); None writes no log files.
    """
    emitter = Emitter()
    if json_output:
        emitter.add(JsonLines())
    elif live:
        emitter.add(LiveDisplay(progress, output, verbose=verbose, show_steps=show_steps))
    if log_name:
        emitter.add(NodeLogs(log_name))
    return emitter
