"""CLI commands: init (being written)."""

import click

COMMANDS: list[click.Command] = []
