"""`pifleet init`: write a commented fleet.yaml from flags, or by asking in a terminal."""

from __future__ import annotations

import json
import sys

import click

from pifleet.cli.context import App, pass_app
from pifleet.errors import BadInput
from pifleet.fleet import suggest_names
from pifleet.fleet.create import (
    default_fleet_name,
    new_fleet_text,
    parse_node_spec,
    refuse_overwrite,
    write_fleet_file,
)


def stdin_is_terminal() -> bool:
    """Whether there is someone to ask (a separate function so tests can stand in for one)."""
    return sys.stdin.isatty()


def _ask(name: str) -> tuple[str, list[tuple[str, str]]]:
    """The fleet's name and its nodes, asked one by one with suggested ship names."""
    name = click.prompt("Fleet name", default=name)
    count = click.prompt("How many Raspberry Pis", type=click.IntRange(1, 100), default=3)
    nodes: list[tuple[str, str]] = []
    for i in range(count):
        suggested = suggest_names(1, [n for n, _ in nodes])[0]
        node = click.prompt(f"Hostname of Pi {i + 1}", default=suggested)
        address = click.prompt(f"Address of {node} (IP or DNS name)", default=f"{node}.local")
        nodes.append((node, address))
    return name, nodes


@click.command()
@click.option("--name", help="The fleet's name (default: the folder of the fleet file).")
@click.option("--node", "node_specs", multiple=True, metavar="NAME=ADDRESS",
              help="A Pi: its hostname and address (repeat for each; asked when none given).")
@click.option("--control-plane", metavar="NAME",
              help="The control-plane node (default: the first node).")
@click.option("--force", is_flag=True, help="Replace an existing fleet file.")
@pass_app
def init(app: App, name: str | None, node_specs: tuple[str, ...], control_plane: str | None,
         force: bool) -> None:
    """Write a commented fleet.yaml (at --fleet) that explains every setting."""
    path = app.fleet_path
    refuse_overwrite(path, force)
    name = name or default_fleet_name(path)
    if node_specs:
        nodes = [parse_node_spec(spec) for spec in node_specs]
    elif stdin_is_terminal():
        name, nodes = _ask(name)
    else:
        raise BadInput("no --node given and no terminal to ask on: give each Pi as "
                       "--node NAME=ADDRESS, e.g. --node laperouse=192.168.1.10")
    fleet = write_fleet_file(path, new_fleet_text(path, name, nodes, control_plane), force=force)
    if app.json_output:
        click.echo(json.dumps({"fleet": str(path), "name": fleet.name,
                               "nodes": [n.name for n in fleet.nodes],
                               "control_plane": fleet.control_plane.name}))
    else:
        click.echo(f"Wrote {path}: fleet {fleet.name}, {len(fleet.nodes)} node(s), control "
                   f"plane {fleet.control_plane.name}. Next: `pifleet trust`.")


COMMANDS: list[click.Command] = [init]
