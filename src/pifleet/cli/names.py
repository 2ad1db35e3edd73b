"""`pifleet names [N]`: unused sailing-ship hostnames, one bare name per line."""

from __future__ import annotations

import json

import click

from pifleet.cli.context import App, pass_app
from pifleet.fleet import suggest_names
from pifleet.fleet.load import read_node_names


@click.command()
@click.argument("count", metavar="[N]", type=click.IntRange(min=1), default=3, required=False)
@pass_app
def names(app: App, count: int) -> None:
    """Suggest N unused sailing-ship hostnames (default 3), skipping the fleet's own."""
    for name in suggest_names(count, read_node_names(app.fleet_path)):
        click.echo(json.dumps({"name": name}) if app.json_output else name)


COMMANDS: list[click.Command] = [names]
