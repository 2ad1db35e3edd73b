"""CLI commands: names (being written)."""

import click

COMMANDS: list[click.Command] = []
