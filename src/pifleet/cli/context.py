"""What every command shares: global options, the fleet, the event renderers, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.text import Text

from pifleet.errors import PifleetError, describe, plain_text

if TYPE_CHECKING:
    from pifleet.events import Emitter, Event
    from pifleet.fleet import Fleet


@dataclass
class App:
    """Global options and lazily loaded shared state."""

    fleet_path: str = "fleet.yaml"
    json_output: bool = False
    verbose: int = 0
    # Whether --fleet or $PIFLEET_FLEET named the file (rather than the default ./fleet.yaml).
    fleet_given: bool = False
    _fleet: Fleet | None = field(default=None, repr=False)
    _emitters: list[Emitter] = field(default_factory=list, repr=False)

    @property
    def fleet(self) -> Fleet:
        """The fleet file, loaded and validated once (BadInput on any problem)."""
        if self._fleet is None:
            from pifleet.fleet import load_fleet

            self._fleet = load_fleet(Path(self.fleet_path))
        return self._fleet

    @property
    def console(self) -> Console:
        """Where results go: stdout, or stderr under --json so stdout stays JSON lines."""
        return Console(stderr=self.json_output, highlight=False)

    @property
    def err_console(self) -> Console:
        """Where progress, summaries and diagnostics go: always stderr."""
        return Console(stderr=True, highlight=False)

    def emitter(self, *, live: bool = True, log_name: str | None = None,
                show_steps: bool = True) -> Emitter:
        """An Emitter wired to --json or the live display, and to per-node log files.

        Progress goes to stderr; nodes' output lines go to stdout. `show_steps=False` prints
        finished steps only when they fail (or with -v).
        """
        from pifleet.ui import make_emitter

        emitter = make_emitter(self.err_console, Console(highlight=False),
                               json_output=self.json_output, verbose=self.verbose, live=live,
                               log_name=log_name, show_steps=show_steps)
        self._emitters.append(emitter)
        return emitter

    @property
    def failures(self) -> list[Event]:
        """Every failed step reported through this command's emitters, in order."""
        return [event for emitter in self._emitters for event in emitter.failures]


pass_app = click.make_pass_decorator(App)


def run_guarded(command: click.Command, args: list[str] | None = None) -> int:
    """Run the click command and return its exit code; nothing raised reaches the user.

    Commands return an int (or None for 0); errors become one message on stderr (and, under
    --json, one `{"status": "error", "message", "exit_code"}` object on stdout).
    """
    args = sys.argv[1:] if args is None else args
    app = App()
    _read_global_flags(args, app)  # errors before the command starts still honour them
    try:
        result = command.main(args, standalone_mode=False, obj=app)
    except PifleetError as exc:
        return _fail(app, str(exc), exc.exit_code, exc)
    except (OSError, subprocess.SubprocessError) as exc:
        # A local file or program failed outside any node step: one line, not a traceback.
        return _fail(app, describe(exc), 1, exc)
    except click.exceptions.Abort:
        # End of input at a prompt: every prompt comes before any change.
        return _fail(app, "stopped at a question (end of input): nothing was changed", 2)
    except click.ClickException as exc:
        if not app.json_output:
            exc.show()
            return exc.exit_code
        return _fail(app, exc.format_message(), exc.exit_code)
    except KeyboardInterrupt:
        return _fail(app, "interrupted", 130)
    except Exception as exc:  # a defect in pifleet: still no traceback, the details with -v
        return _fail(app, f"internal error: {describe(exc)} (run with -v for where; "
                          "please report it)", 1, exc)
    code = result if isinstance(result, int) else 0
    if code and app.json_output:
        _print_json_error(_failure_summary(app.failures, code), code)
    return code


def _read_global_flags(args: list[str], app: App) -> None:
    """--json and -v from the arguments before the command name."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--fleet":
            skip = True
        elif arg == "--json":
            app.json_output = True
        elif arg in ("-v", "--verbose") or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
            app.verbose += arg.count("v") if arg.startswith("-v") else 1
        elif not arg.startswith("-") or arg == "--":
            return


def _fail(app: App, message: str, code: int, exc: BaseException | None = None) -> int:
    message = plain_text(message)
    # A failed step was already shown by the live display with its node and step.
    shown = not app.json_output and any(e.message == message for e in app.failures)
    if not shown:
        text = Text("error: ", style="bold red") + Text(message)
        Console(stderr=True, highlight=False, soft_wrap=True).print(text)
    if exc is not None and app.verbose:
        for line in _underlying(exc):
            Console(stderr=True, highlight=False, soft_wrap=True).print(Text(line, style="dim"))
    if app.json_output:
        _print_json_error(message, code)
    return code


def _print_json_error(message: str, code: int) -> None:
    click.echo(json.dumps({"status": "error", "message": message, "exit_code": code}))


def _failure_summary(failures: list[Event], code: int) -> str:
    """`N node(s) failed: NAME (phase/step: why); ...`, from each node's first failure."""
    first: dict[str | None, Event] = {}
    for event in failures:
        first.setdefault(event.node, event)
    if not first:
        return f"failed (exit status {code})"
    parts = [f"{e.node or 'local'} ({e.phase}/{e.step}: {plain_text(e.message)})"
             for e in first.values()]
    return f"{len(first)} node(s) failed: " + "; ".join(parts)


def _underlying(exc: BaseException) -> list[str]:
    """The chain of errors behind `exc`, one line each with where it was raised (for -v)."""
    lines = []
    seen: set[int] = set()
    # pifleet's own error is the message already shown: start from what lies behind it.
    current: BaseException | None = exc
    if isinstance(exc, PifleetError):
        current = exc.__cause__ or exc.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        where = ""
        tb = current.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None:
            where = f" (at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno})"
        kind = f"{type(current).__module__}.{type(current).__qualname__}"
        lines.append(f"  underlying error: {kind}: {plain_text(str(current))}{where}")
        current = current.__cause__ or current.__context__
    return lines
