"""CLI commands: sandbox (being written)."""

import click

COMMANDS: list[click.Command] = []
