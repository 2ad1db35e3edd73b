"""Reading a fleet file: YAML with positions, then the model, then cross-field checks.

Every problem found in one pass is reported together, one line each, as `file:line:column:
what is wrong: what to write instead`.
"""

from __future__ import annotations

import difflib
import ipaddress
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from pifleet.fleet.checks import check_fleet_data
from pifleet.fleet.model import Fleet, FleetFileError, FleetProblem
from pifleet.fleet.yamlpos import Loc, Positions, read_yaml

# An example line for each key, shown when its value is missing or of the wrong kind.
EXAMPLES: dict[str, str] = {
    "name": "name: laperouse",
    "nodes": "nodes: [{name: laperouse, address: 192.168.1.10, role: control-plane}]",
    "address": "address: 192.168.1.10` or `address: laperouse.local",
    "role": "role: worker` or `role: control-plane",
    "ssh": "ssh: {user: pirate}",
    "user": "user: pirate",
    "port": "port: 22",
    "private_key": "private_key: .pifleet/id_ed25519",
    "known_hosts": "known_hosts: .pifleet/known_hosts",
    "password": "password: hypriot",
    "tower": "tower: a",
    "team": "team: blue",
    "kubernetes": 'kubernetes: {version: "1.34"}',
    "version": 'version: "1.34"',
    "pod_cidr": "pod_cidr: 10.244.0.0/16",
    "service_cidr": "service_cidr: 10.96.0.0/12",
    "cni": "cni: flannel",
    "dashboard": "dashboard: headlamp` (or `kubernetes-dashboard`, `none`)",
    "package_repository": "package_repository: https://pkgs.k8s.io/core:/stable:/v{minor}/deb/",
    "package_key_url":
        "package_key_url: https://pkgs.k8s.io/core:/stable:/v{minor}/deb/Release.key",
    "token_ttl": "token_ttl: 1h",
    "apt": "apt: {proxy: http://192.168.1.2:3142}",
    "mirror": "mirror: http://192.168.1.2/debian",
    "proxy": "proxy: http://192.168.1.2:3142",
}


def load_fleet(path: Path | str) -> Fleet:
    """Read and validate a fleet file.

    Raises FleetFileError (bad input, exit 2) listing every problem with file, line and column.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FleetFileError(path, None, None, "no such fleet file: write one with `pifleet "
                             "init`, or name yours with `--fleet FILE` or $PIFLEET_FLEET") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise FleetFileError(path, None, None, f"cannot read the fleet file: {reason}") from None
    return parse_fleet(text, path)


def parse_fleet(text: str, path: Path | str = "fleet.yaml") -> Fleet:
    """Validate fleet-file text as if it were read from `path` (which is recorded, not read)."""
    doc = read_yaml(text, _wants_text)
    problems = list(doc.problems)
    if doc.data is None and not problems:
        problems.append(FleetProblem(1, 1, "the fleet file is empty: write at least `name:` and "
                                     "`nodes:` (`pifleet init` writes a commented one)"))
    elif doc.data is not None and not isinstance(doc.data, dict):
        problems.append(FleetProblem(1, 1, "the fleet file must be a map of keys such as "
                                     "`name:` and `nodes:`, not a single value or a list"))
    if problems:
        raise FleetFileError.of(path, problems)
    fleet: Fleet | None = None
    try:
        fleet = Fleet.model_validate(doc.data)
    except ValidationError as exc:
        problems += [_model_problem(error, doc.positions) for error in exc.errors()]
    for finding in check_fleet_data(doc.data):
        where = (doc.positions.of_key(finding.loc) if finding.at_key
                 else doc.positions.of_value(finding.loc))
        line, column = where or (None, None)
        problems.append(FleetProblem(line, column, finding.message))
    if problems or fleet is None:
        raise FleetFileError.of(path, problems)
    fleet._path = Path(path)
    return fleet


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _annotation_at(loc: Loc) -> Any:
    """The model's type for the value at `loc` (None when the path is not in the model)."""
    annotation: Any = Fleet
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, int):
            if get_origin(annotation) is not list:
                return None
            annotation = get_args(annotation)[0]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel) \
                and part in annotation.model_fields:
            annotation = annotation.model_fields[part].annotation
        else:
            return None
    return _unwrap(annotation)


def _wants_text(loc: Loc) -> bool:
    annotation = _annotation_at(loc)
    if get_origin(annotation) is Literal:
        return all(isinstance(a, str) for a in get_args(annotation))
    # A network written as `yes` or `5` stays text, and is then refused as no network.
    return annotation in (str, Path, ipaddress.IPv4Network)


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the file"


def _model_problem(error: Any, positions: Positions) -> FleetProblem:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    key = next((p for p in reversed(loc) if isinstance(p, str)), "")
    example = EXAMPLES.get(key)
    if kind == "extra_forbidden":
        where = positions.of_key(loc)
        parent = _annotation_at(loc[:-1])
        known = sorted(parent.model_fields) if isinstance(parent, type) \
            and issubclass(parent, BaseModel) else []
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        place = f" in `{_dotted(loc[:-1])}`" if len(loc) > 1 else ""
        advice = f"did you mean `{close[0]}`?" if close else \
            f"the keys allowed here are {', '.join(f'`{k}`' for k in known)}"
        message = f"unknown key `{key}`{place}: {advice}"
    elif kind == "missing":
        where = positions.of_value(loc[:-1])
        place = f" in `{_dotted(loc[:-1])}`" if len(loc) > 1 else ""
        message = f"`{key}` is missing{place}: add e.g. `{example or key + ': ...'}`"
    elif kind == "fleet_value":
        where = positions.of_value(loc)
        message = f"`{_dotted(loc)}`: {error['msg']}"
    else:
        where = positions.of_value(loc)
        message = f"`{_dotted(loc)}`: {_what_is_wrong(error, loc, key)}"
        if example and error["type"] != "literal_error":
            message += f": write e.g. `{example}`"
    line, column = where or (None, None)
    return FleetProblem(line, column, message)


def _what_is_wrong(error: Any, loc: Loc, key: str) -> str:
    """What is wrong with a value, in pifleet's words (pydantic's own say `Input should ...`).

    The value itself is quoted only for keys whose values are never secret.
    """
    kind, value, bounds = error["type"], error.get("input"), error.get("ctx") or {}
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "should be a map of keys"
    if kind == "list_type":
        return "should be a list"
    if kind == "literal_error":
        choices = [f"`{c}`" for c in get_args(_annotation_at(loc))]
        if key == "role" and isinstance(value, str) and value.lower() == "master":
            # The practical (and kubeadm before 1.20) call the control plane "master".
            return "`master` is the old name of the control plane: use `role: control-plane`"
        shown = f"`{value}`" if isinstance(value, str) else "this value"
        if len(choices) == 1:
            return f"{shown} is not supported: pifleet knows only {choices[0]}"
        return f"{shown} is not a choice: write one of {', '.join(choices)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        if isinstance(value, bool):
            return "should be a whole number, not yes/no"
        if isinstance(value, str) and value.strip().isdigit():
            return "should be a whole number written without quotes"
        return "should be a whole number"
    if kind in ("greater_than_equal", "greater_than"):
        return f"should be at least {bounds.get('ge', bounds.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"should be at most {bounds.get('le', bounds.get('lt'))}"
    if kind.startswith("ip_v4_network"):
        shown = f"`{value}`" if isinstance(value, str) else "this value"
        return (f"{shown} is not an IPv4 network (its first address, `/`, a prefix length from "
                "0 to 32)")
    if kind in ("string_type", "path_type"):
        if value is None:
            return "is empty"
        what = "a file path" if kind == "path_type" else "text"
        return f"should be {what}" + (", not a list or a map"
                                       if isinstance(value, list | dict) else "")
    return "has a value pifleet cannot use"
