"""CLI commands: remote (being written)."""

import click

COMMANDS: list[click.Command] = []
