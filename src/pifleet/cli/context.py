"""What every command shares: global options, the fleet, the event renderers, exit codes."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.text import Text

from pifleet.errors import PifleetError

if TYPE_CHECKING:
    from pifleet.events import Emitter
    from pifleet.fleet import Fleet



@dataclass
class App:
    """Global options and lazily loaded shared state."""

    fleet_path: str
    json_output: bool = False
    verbose: int = 0
    _fleet: Fleet | None = field(default=None, repr=False)

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

        return make_emitter(self.err_console, Console(highlight=False),
                            json_output=self.json_output, verbose=self.verbose, live=live,
                            log_name=log_name, show_steps=show_steps)


pass_app = click.make_pass_decorator(App)


def run_guarded(command: click.Command) -> int:
    """Run the click command and return its exit code.

    Commands return an int (or None for 0); pifleet errors become a one-line message.
    """
    try:
        result = command.main(standalone_mode=False)
    except PifleetError as exc:
        _print_error(str(exc))
        return exc.exit_code
    except (OSError, subprocess.SubprocessError) as exc:
        # A local file or program failed outside any node step: one line, not a traceback.
        _print_error(str(exc) or type(exc).__name__)
        return 1
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return 2
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    return result if isinstance(result, int) else 0


def _print_error(message: str) -> None:
    text = Text("error: ", style="bold red") + Text(message)
    Console(stderr=True, highlight=False, soft_wrap=True).print(text)
