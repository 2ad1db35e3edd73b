"""`pifleet trust` and `pifleet run`: the commands that talk to nodes over SSH."""

from __future__ import annotations

import sys

import click

from pifleet.cli.context import App, pass_app
from pifleet.cli.options import nodes_option, selected_names
from pifleet.errors import BadInput


@click.command()
@nodes_option
@click.option("--harden", is_flag=True,
              help="Also disable password logins and replace the default password with a "
                   "random one kept in the fleet's secrets.")
@click.option("--ask-password", is_flag=True,
              help="Ask for the first-contact password instead of using the fleet file's.")
@click.option("--print-password", "print_password", metavar="NODE",
              help="Print the password --harden set on NODE, and nothing else.")
@pass_app
def trust(app: App, nodes: tuple[str, ...] | None, harden: bool, ask_password: bool,
          print_password: str | None) -> int:
    """First contact: install the fleet key, pin host keys, passwordless sudo."""
    from pifleet.remote.secrets import require_secret
    from pifleet.remote.targets import node_password
    from pifleet.remote.trust import PASSWORD_SECRET
    from pifleet.remote.trust import trust as run_trust
    from pifleet.ui.summary import print_summary

    fleet = app.fleet
    if print_password:
        click.echo(require_secret(fleet, print_password, PASSWORD_SECRET,
                                  "run `pifleet trust --harden` first"))
        return 0
    selected = fleet.select(selected_names(nodes))
    # A password is needed only for nodes that do not have the fleet key yet; without a
    # terminal to ask on, those nodes fail with an authentication error that says so.
    password = None
    without = [n.name for n in selected if node_password(fleet, n) is None]
    if ask_password or (without and sys.stdin.isatty()):
        password = click.prompt("First-contact SSH password", hide_input=True, err=True)
    with app.emitter(log_name=fleet.name) as emit:
        result = run_trust(fleet, selected, emit, password=password, override=ask_password,
                           harden=harden)
    print_summary(app.err_console, emit.failures, len(selected), "trust")
    return 1 if result.failed else 0


@click.command(context_settings={"ignore_unknown_options": True})
@nodes_option
@click.option("--timeout", type=float, help="Give up on a node after this many seconds.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_app
def run(app: App, nodes: tuple[str, ...] | None, timeout: float | None,
        command: tuple[str, ...]) -> int:
    """Run a shell command line on nodes in parallel: `pifleet run -- CMD`.

    Each output line is printed whole as `NAME: line`. Exit status 1 if any node failed.
    """
    from pifleet.remote.command import run_command
    from pifleet.remote.hostkeys import require_trusted
    from pifleet.ui.summary import print_summary

    line = " ".join(command).strip()
    if not line:
        raise BadInput("run: no command given (usage: pifleet run -- CMD)")
    fleet = app.fleet
    selected = fleet.select(selected_names(nodes))
    require_trusted(fleet, selected)
    with app.emitter(log_name=fleet.name, show_steps=False) as emit:
        result = run_command(fleet, selected, line, emit, timeout=timeout)
    if result.failed:
        print_summary(app.err_console, emit.failures, len(selected), "run")
    return 1 if result.failed else 0


COMMANDS: list[click.Command] = [trust, run]
