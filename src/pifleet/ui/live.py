"""The live display: a table of what each node is doing, and a line per finished step."""

from __future__ import annotations

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pifleet.events import Event, Status

_STYLE = {
    Status.OK: "green",
    Status.FAILED: "bold red",
    Status.SKIPPED: "dim",
    Status.INFO: "cyan",
    Status.START: "yellow",
}


def format_output_line(node: str | None, line: str) -> Text:
    """`NAME: line`, exactly: no markup, no highlighting."""
    return Text(f"{node or 'local'}: {line}")


def format_event(event: Event) -> Text:
    """One finished step as a single line of text."""
    who = event.node or "local"
    mark = {Status.OK: "changed" if event.changed else "ok"}.get(event.status, str(event.status))
    text = Text(f"{who:<14} ")
    text.append(f"{event.phase}/{event.step}", style="bold")
    text.append(f"  {mark}", style=_STYLE.get(event.status, ""))
    if event.duration is not None:
        text.append(f"  {event.duration:.1f}s", style="dim")
    if event.message:
        text.append(f"  {event.message}")
    return text


class LiveDisplay:
    """A sink for humans.

    With `show_steps` on a terminal, a live table shows each node's current step and finished
    steps are printed above it (failures always, the rest with -v); off a terminal, one line per
    finished step. Without `show_steps`, only failures. Output lines (`Status.OUTPUT`) go to the
    `output` console as `NAME: line`, never wrapped or cut, and written byte for byte (tabs and
    all) when that is not a terminal.
    """

    def __init__(self, console: Console, output: Console | None = None, verbose: int = 0,
                 show_steps: bool = True) -> None:
        self.console = console
        self.output = output or console
        self.verbose = verbose
        self.show_steps = show_steps
        self.current: dict[str, Event] = {}
        self.live: Live | None = None

    def _print_output(self, node: str | None, line: str) -> None:
        if self.output.is_terminal:
            self._print(self.output, format_output_line(node, line))
        else:
            self.output.file.write(f"{node or 'local'}: {line}\n")
            self.output.file.flush()

    @staticmethod
    def _print(console: Console, text: Text) -> None:
        console.print(text, soft_wrap=True, crop=False, overflow="ignore", highlight=False)

    def _table(self) -> Table:
        table = Table(box=None, show_header=False, pad_edge=False)
        for node, event in sorted(self.current.items()):
            table.add_row(Text(node, style="bold"), f"{event.phase}/{event.step}",
                          Text(str(event.status), style=_STYLE.get(event.status, "")))
        return table

    def __call__(self, event: Event) -> None:
        if event.status is Status.OUTPUT:
            self._print_output(event.node, event.message)
            return
        key = event.node or "local"
        if event.status is Status.START:
            self.current[key] = event
            self._refresh()
            return
        self.current.pop(key, None)
        if event.status in (Status.FAILED, Status.INFO) or self.verbose or (
            self.show_steps and not self.console.is_terminal
        ):
            self._print(self.console, format_event(event))
        self._refresh()

    def _refresh(self) -> None:
        if not (self.console.is_terminal and self.show_steps):
            return
        if self.current and self.live is None:
            # No redirection: stdout may be a pipe that must get the nodes' output, not ours.
            self.live = Live(self._table(), console=self.console, transient=True,
                             refresh_per_second=8, redirect_stdout=False,
                             redirect_stderr=False)
            self.live.start()
        elif self.live is not None:
            if self.current:
                self.live.update(self._table())
            else:
                self.close()

    def close(self) -> None:
        """Stop the live table (idempotent)."""
        if self.live is not None:
            self.live.stop()
            self.live = None
