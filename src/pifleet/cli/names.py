"""`pifleet names [N]`: unused sailing-ship hostnames, one bare name per line."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pifleet.cli.context import App, pass_app
from pifleet.fleet import suggest_names


@click.command()
@click.argument("count", metavar="[N]", type=click.IntRange(min=1), default=3, required=False)
@pass_app
def names(app: App, count: int) -> None:
    """Suggest N unused sailing-ship hostnames (default 3), skipping the fleet's own.

    Works without a fleet file; a fleet file named with --fleet (or $PIFLEET_FLEET), or a
    ./fleet.yaml that is there, must be valid.
    """
    uses_fleet = app.fleet_given or Path(app.fleet_path).exists()
    taken = [node.name for node in app.fleet.nodes] if uses_fleet else []
    for name in suggest_names(count, taken):
        click.echo(json.dumps({"name": name}) if app.json_output else name)


COMMANDS: list[click.Command] = [names]
