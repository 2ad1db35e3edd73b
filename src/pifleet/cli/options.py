"""Options that several commands share, parsed the same way everywhere."""

from __future__ import annotations

from typing import Any

import click


class NodeNames(click.ParamType):
    """`A,B`: one or more node names. An empty list or an empty name is bad input.

    A script whose variable came out empty (`--nodes "$NODES"`) must not reach every node:
    leaving the option out is the only way to mean all of them.
    """

    name = "A,B"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        names = [part.strip() for part in str(value).split(",")]
        if not any(names):
            self.fail("no node named: give names separated by commas, e.g. "
                      "`--nodes laperouse,fregate`, or leave --nodes out for every node",
                      param, ctx)
        if not all(names):
            self.fail(f"{value!r} has an empty name: write names separated by single commas, "
                      "e.g. `--nodes laperouse,fregate`", param, ctx)
        return tuple(dict.fromkeys(names))


nodes_option = click.option("--nodes", "nodes", type=NodeNames(), metavar="A,B",
                            help="Only these nodes (comma-separated names; all when left out).")


def selected_names(nodes: tuple[str, ...] | None) -> list[str] | None:
    """The names given with --nodes, or None for every node."""
    return list(nodes) if nodes else None
