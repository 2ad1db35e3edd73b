"""The end-of-run summary: which nodes failed, at which step, and why."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from pifleet.events import Event


def print_summary(console: Console, failures: list[Event], total: int, what: str) -> None:
    """One line for the run, then one line per failed node: `NAME: phase/step: message`."""
    failed_nodes = {e.node for e in failures}
    if not failed_nodes:
        console.print(Text(f"{what}: {total} node(s) done", style="green"), soft_wrap=True,
                      highlight=False)
        return
    names = ", ".join(sorted(str(n or "local") for n in failed_nodes))
    console.print(Text(f"{what}: {len(failed_nodes)} of {total} node(s) failed: {names}",
                       style="bold red"), soft_wrap=True, highlight=False)
    seen: set[str | None] = set()
    for event in failures:
        if event.node in seen:
            continue
        seen.add(event.node)
        console.print(Text(f"  {event.node or 'local'}: {event.phase}/{event.step}: "
                           f"{event.message}"), soft_wrap=True, highlight=False)
