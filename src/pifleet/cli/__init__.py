"""The `pifleet` command line: parse, call one core function, render. No logic lives here."""

from __future__ import annotations

import importlib
import sys

import click
from click.core import ParameterSource

from pifleet import __version__
from pifleet.cli.context import App, pass_app, run_guarded

__all__ = ["App", "main", "pass_app"]


# Each command's module, in the order a fleet's life goes through them. A module is imported
# only when its command runs, so `pifleet flash` never pays for pyinfra or pydantic it does not
# use: start-up time counts in every benchmark against dd and bmaptool.
_MODULES = {
    "init": "pifleet.cli.init",
    "names": "pifleet.cli.names",
    "flash": "pifleet.cli.flash",
    "devices": "pifleet.cli.flash",
    "trust": "pifleet.cli.remote",
    "run": "pifleet.cli.remote",
    "sandbox": "pifleet.cli.sandbox",
}


class _LazyGroup(click.Group):
    """Finds each command in its module on first use; lists them in lifecycle order."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = _MODULES.get(cmd_name)
        if module is None:
            return None
        commands = importlib.import_module(module).COMMANDS
        return next((c for c in commands if c.name == cmd_name), None)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    app = ctx.ensure_object(App)
    app.fleet_path, app.json_output, app.verbose = fleet_path, json_output, verbose
    app.fleet_given = ctx.get_parameter_source("fleet_path") is not ParameterSource.DEFAULT


def main() -> None:
    """Console-script entry point: exit 0 done, 1 a node or step failed, 2 bad input,
    130 interrupted."""
    sys.exit(run_guarded(cli))
