"""CLI commands: flash (being written)."""

import click

COMMANDS: list[click.Command] = []
