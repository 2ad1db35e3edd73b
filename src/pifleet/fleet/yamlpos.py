"""YAML read through PyYAML's node tree, so every key and value keeps its line and column.

Plain `yaml.safe_load` forgets positions and silently keeps the last of two equal keys; here both
are kept in view: positions go into a map keyed by the value's path, duplicates become problems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from pifleet.fleet.model import FleetProblem

Loc = tuple[str | int, ...]
# Told a path, says whether the value there is text (so `1.30` must stay "1.30", not 1.3).
WantsText = Callable[[Loc], bool]


@dataclass
class Positions:
    """1-based (line, column) of each value and each mapping key, by path."""

    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def of_value(self, loc: Loc) -> tuple[int, int] | None:
        """Where the value at `loc` is, or where its nearest written ancestor is."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.values:
                return self.values[loc[:end]]
        return None

    def of_key(self, loc: Loc) -> tuple[int, int] | None:
        """Where the key of `loc` is written; falls back to the value's position."""
        return self.keys.get(loc) or self.of_value(loc)


def _at(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


@dataclass
class YamlDocument:
    """The plain data of one YAML document, its positions and the problems met reading it."""

    data: Any
    positions: Positions
    problems: list[FleetProblem]


def read_yaml(text: str, wants_text: WantsText = lambda loc: False) -> YamlDocument:
    """Read one YAML document. A syntax error gives data None and one problem."""
    doc = YamlDocument(None, Positions(), [])
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # checks the characters at once
        root = loader.get_single_node()
        if root is not None:
            doc.data = _Walker(loader, doc, wants_text).value(root, ())
    except yaml.MarkedYAMLError as exc:
        doc.data = None
        doc.problems = [_syntax_problem(exc)]
    except yaml.reader.ReaderError as exc:
        doc.data = None
        doc.problems = [_character_problem(text, exc)]
    except (RecursionError, _TooLarge):
        # Aliases can nest a document into itself or multiply it: a fleet file never needs that.
        doc.data, doc.positions = None, Positions()
        doc.problems = [FleetProblem(1, 1, f"the YAML expands to more than {MAX_VALUES} values "
                                     "or nests too deeply (aliases such as `*name` inside "
                                     "themselves?): a fleet file is a few levels of keys and "
                                     "lists")]
    finally:
        if loader is not None:
            loader.dispose()
    return doc


def _character_problem(text: str, exc: yaml.reader.ReaderError) -> FleetProblem:
    before = text[:exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
    return FleetProblem(line, column, f"character U+{code:04X} is not allowed in YAML (a "
                        "control character or a stray byte): delete it or retype the line")


def _syntax_problem(exc: yaml.MarkedYAMLError) -> FleetProblem:
    mark = exc.problem_mark or exc.context_mark
    line, column = _at(mark) if mark else (None, None)
    what = exc.problem or "cannot be read"
    if "\t" in what or "'\\t'" in what:
        hint = "indent with spaces, never tabs"
    elif exc.context:
        hint = f"{exc.context}; check the indentation and the `: ` after each key"
    else:
        hint = "check the indentation, the `: ` after each key and the quotes"
    return FleetProblem(line, column, f"YAML syntax: {what}: {hint}")


# Far more than a fleet of 244 nodes with every setting written out.
MAX_VALUES = 100_000


class _TooLarge(Exception):
    """The document expands past MAX_VALUES values."""


class _Walker:
    """Turns composed nodes into plain data while recording positions and duplicates."""

    def __init__(self, loader: yaml.SafeLoader, doc: YamlDocument, wants_text: WantsText) -> None:
        self.loader = loader
        self.doc = doc
        self.wants_text = wants_text
        self.count = 0

    def value(self, node: yaml.Node, loc: Loc) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _TooLarge
        self.doc.positions.values[loc] = _at(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, (*loc, i)) for i, item in enumerate(node.value)]
        value = self.loader.construct_object(node, deep=True)
        # YAML reads `version: 1.30` as the float 1.3, `name: no` as False and `password: 0123`
        # as 83: where the model wants text, a plain (unquoted) scalar keeps what was written.
        plain = isinstance(node, yaml.ScalarNode) and node.style is None
        if plain and value is not None and not isinstance(value, str) and self.wants_text(loc):
            return node.value
        return value

    def mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # resolves `<<:` merge keys like safe_load does
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line, column = _at(key_node.start_mark)
                self.doc.problems.append(FleetProblem(
                    line, column, "a key must be a plain word such as `name`, not a list or map"))
                continue
            key = str(self.loader.construct_object(key_node))
            line, column = _at(key_node.start_mark)
            if key in result:
                first_line = self.doc.positions.keys[(*loc, key)][0]
                self.doc.problems.append(FleetProblem(
                    line, column, f"duplicate key `{key}` (first on line {first_line}): "
                    "keep only one of them"))
                continue
            self.doc.positions.keys[(*loc, key)] = (line, column)
            result[key] = self.value(value_node, (*loc, key))
        return result
