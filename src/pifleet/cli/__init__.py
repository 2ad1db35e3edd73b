"""The `pifleet` command line: parse, call one core function, render. No logic lives here."""

from __future__ import annotations

import sys

import click

from pifleet import __version__
from pifleet.cli.context import App, pass_app, run_guarded

__all__ = ["App", "main", "pass_app"]


class _InOrder(click.Group):
    """Lists commands in the order a fleet's life goes through them, not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=_InOrder, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--fleet", "fleet_path", type=click.Path(dir_okay=False), envvar="PIFLEET_FLEET",
              default="fleet.yaml", show_default=True,
              help="The fleet file (or $PIFLEET_FLEET).")
@click.option("--json", "json_output", is_flag=True,
              help="Print every event as one JSON object per line on stdout.")
@click.option("-v", "--verbose", count=True, help="More detail (repeat for more).")
@click.version_option(__version__, prog_name="pifleet")
@click.pass_context
def cli(ctx: click.Context, fleet_path: str, json_output: bool, verbose: int) -> None:
    """Turn a fleet of Raspberry Pis into a Kubernetes cluster."""
    ctx.obj = App(fleet_path=fleet_path, json_output=json_output, verbose=verbose)


def _register() -> None:
    from pifleet.cli import flash, init, names, remote, sandbox

    for module in (init, names, flash, remote, sandbox):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point: exit 0 done, 1 a node or step failed, 2 bad input."""
    sys.exit(run_guarded(cli))
