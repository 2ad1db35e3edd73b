"""`pifleet sandbox up|down|list|restart`: virtual Raspberry Pis on this machine (Linux, root)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from pifleet.cli.context import App, pass_app
from pifleet.cli.options import nodes_option, selected_names

DEFAULT_DIR = "pifleet-sandbox"
dir_option = click.option("--dir", "directory", type=click.Path(file_okay=False),
                          default=DEFAULT_DIR, show_default=True,
                          help="The sandbox's folder (its fleet.yaml and state live there).")


@click.group()
def sandbox() -> None:
    """Virtual Raspberry Pis on this machine (Linux, root)."""


@sandbox.command()
@click.option("--nodes", "count", type=click.IntRange(1, 244), default=3, show_default=True,
              help="How many virtual Pis (the first is the control plane).")
@dir_option
@click.option("--arch", type=click.Choice(["native", "arm64"]), default="native",
              show_default=True, help="arm64 runs the nodes under qemu-user emulation.")
@pass_app
def up(app: App, count: int, directory: str, arch: str) -> int:
    """Boot N virtual Pis and write DIR/fleet.yaml for them (waits for SSH)."""
    from pifleet import sandbox as core

    with app.emitter() as emit:
        info = core.up(Path(directory), count, arch, emit)
    if app.json_output:
        click.echo(json.dumps({"fleet": str(info.fleet_path), "bridge": info.bridge,
                               "bridge_address": info.bridge_address,
                               "packages_url": info.packages_url,
                               "nodes": [{"name": n.name, "address": n.address,
                                          "role": n.role} for n in info.nodes]}))
        return 0
    table = Table(box=None, pad_edge=False)
    for column in ("node", "address", "role"):
        table.add_column(column)
    for node in info.nodes:
        table.add_row(node.name, node.address, node.role)
    app.console.print(table)
    app.console.print(Text(f"sandbox ready: {len(info.nodes)} node(s) on {info.bridge} "
                           f"({info.network}); next: pifleet --fleet {info.fleet_path} trust"),
                      soft_wrap=True, highlight=False)
    return 0


@sandbox.command()
@dir_option
@pass_app
def down(app: App, directory: str) -> int:
    """Remove the sandbox in DIR: nodes, network, host services and its files."""
    from pifleet import sandbox as core

    with app.emitter() as emit:
        removed = core.down(Path(directory), emit)
    if not app.json_output:
        app.console.print(Text(f"sandbox in {Path(directory).absolute()}: "
                               + ("removed" if removed else "nothing left to remove"),
                               style="green"), soft_wrap=True, highlight=False)
    return 0


@sandbox.command()
@dir_option
@nodes_option
@pass_app
def restart(app: App, directory: str, nodes: tuple[str, ...] | None) -> int:
    """Power-cycle nodes (all by default) and wait for SSH: brings back a node whose sshd or
    other services were stopped."""
    from pifleet import sandbox as core

    with app.emitter() as emit:
        info = core.restart(Path(directory), selected_names(nodes), emit)
    chosen = selected_names(nodes) or info.node_names
    if app.json_output:
        click.echo(json.dumps({"fleet": str(info.fleet_path), "restarted": chosen}))
    else:
        app.console.print(Text(f"sandbox in {info.directory}: restarted {', '.join(chosen)}; "
                               "SSH answers on every node", style="green"),
                          soft_wrap=True, highlight=False)
    return 0


@sandbox.command(name="list")
@pass_app
def list_(app: App) -> int:
    """Show the sandboxes on this machine."""
    from pifleet import sandbox as core

    found = core.list_sandboxes()
    if app.json_output:
        for item in found:
            click.echo(json.dumps({"directory": str(item.directory) if item.directory else None,
                                   "bridge": item.bridge, "network": item.network,
                                   "nodes": item.nodes, "running": item.running,
                                   "state": item.state, "problems": item.problems}))
        return 0
    if not found:
        app.console.print("no sandboxes on this machine")
        return 0
    table = Table(box=None, pad_edge=False)
    for column in ("directory", "bridge", "network", "nodes", "state"):
        table.add_column(column)
    for item in found:
        state = item.state + (f" ({'; '.join(item.problems)})" if item.problems else "")
        table.add_row(str(item.directory or "?"), item.bridge, item.network or "?",
                      f"{len(item.running)}/{len(item.nodes)}", state)
    app.console.print(table)
    return 0


COMMANDS: list[click.Command] = [sandbox]
