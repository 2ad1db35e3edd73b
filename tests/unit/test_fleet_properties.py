"""Generated fleet files, node names and addresses thrown at the loader and at `init`.

Whatever comes in, the result is a fleet or pifleet's own bad-input error whose every line is
`file:line:column: message` in pifleet's words; never another exception, never a library's
phrasing, never advice that is itself invalid.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pifleet.errors import BadInput
from pifleet.fleet import Fleet, FleetFileError, is_hostname_label
from pifleet.fleet.create import new_fleet_text, parse_node_spec
from pifleet.fleet.load import parse_fleet

# Phrases of pydantic, PyYAML and Python that must never reach a user.
LIBRARY_WORDS = ("Input should", "Input is not", "valid string", "valid integer", "Value error",
                 "pydantic", "validation error", "Traceback", "<class", "object at 0x",
                 "ScannerError", "ParserError", "ComposerError", "ReaderError",
                 "IPv4Network(", "errors.pydantic.dev")
PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

KEYS = ["name", "nodes", "address", "role", "ssh", "user", "port", "private_key", "password",
        "known_hosts", "tower", "team", "kubernetes", "version", "pod_cidr", "service_cidr",
        "cni", "dashboard", "package_repository", "package_key_url", "token_ttl", "apt",
        "mirror", "proxy"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-70000, 70000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["laperouse", "Black_Pearl", "black-pearl", "control-plane", "worker",
                     "master", "10.0.0.1", "10.244.0.0/16", "10.96.0.0/12", "fd00::1",
                     "1.34", "v1.34", "1h", "flannel", "headlamp", "", "-", "a" * 70,
                     "http://10.0.0.2/{minor}/", "{x}", "laperouse.local", "256.1.1.1"]),
    st.text(max_size=20))
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)),
                                            inner, max_size=5)),
    max_leaves=25)
NODE = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(["laperouse", "Black_Pearl", "fregate"]),
                       st.text(max_size=12)),
     "address": st.one_of(st.sampled_from(["10.0.0.1", "10.0.0.1", "fd00::2", "x.local"]),
                          st.text(max_size=12))},
    optional={"role": st.sampled_from(["control-plane", "worker", "master", "boss"]),
              "ssh": st.fixed_dictionaries({}, optional={"port": SCALARS, "user": SCALARS})})
FLEETISH = st.fixed_dictionaries(
    {"name": SCALARS, "nodes": st.one_of(st.lists(NODE, max_size=4), SCALARS)},
    optional={"ssh": DATA, "kubernetes": DATA, "apt": DATA})


def check_outcome(text: str) -> Fleet | None:
    """Load `text`: a Fleet, or a FleetFileError holding only located, plain-worded lines."""
    try:
        return parse_fleet(text, "fleet.yaml")
    except FleetFileError as exc:
        message = str(exc)
        assert message and exc.problems
        for line in message.splitlines():
            assert line.startswith("fleet.yaml"), line
        for word in LIBRARY_WORDS:
            assert word not in message, message
        for suggested in re.findall(r"e\.g\. `([^`]*)`", message):
            assert "\n" not in suggested
        for name in re.findall(r"under (\S+)", message):
            assert is_hostname_label(name) or re.fullmatch(r"nodes\[\d+\]", name), message
        return None


@PROPERTY
@given(st.text(max_size=300))
def test_any_text_loads_or_is_reported(text: str) -> None:
    check_outcome(text)


@PROPERTY
@given(DATA)
def test_any_yaml_loads_or_is_reported(data: Any) -> None:
    check_outcome(yaml.safe_dump(data, allow_unicode=True))


@PROPERTY
@given(FLEETISH)
def test_fleet_shaped_yaml_loads_or_is_reported(data: dict[str, Any]) -> None:
    for flow in (False, True):
        check_outcome(yaml.safe_dump(data, allow_unicode=True, default_flow_style=flow))


@PROPERTY
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_yaml_syntax_with_odd_characters_is_reported(text: str) -> None:
    check_outcome("name: lab\nnodes:\n  - " + text)


@PROPERTY
@given(st.text(max_size=40))
def test_node_specs_parse_or_are_bad_input(spec: str) -> None:
    try:
        name, address = parse_node_spec(spec)
    except BadInput as exc:
        assert "NAME=ADDRESS" in str(exc)
        return
    assert name and address and name == name.strip() and address == address.strip()


NAMES = st.one_of(st.sampled_from(["laperouse", "Black_Pearl", "black pearl", "-x", "a" * 64]),
                  st.text(max_size=16))
ADDRESSES = st.one_of(st.sampled_from(["192.168.1.10", "fd00::1", "x.local", "999.1.1.1",
                                       "10.244.0.5", "a..b"]),
                      st.text(max_size=16))


@PROPERTY
@given(fleet_name=st.text(max_size=20),
       nodes=st.lists(st.tuples(NAMES, ADDRESSES), max_size=4),
       plane=st.one_of(st.none(), NAMES))
def test_init_writes_a_valid_fleet_or_says_why_not(fleet_name: str,
                                                   nodes: list[tuple[str, str]],
                                                   plane: str | None) -> None:
    path = Path("fleet.yaml")
    try:
        text = new_fleet_text(path, fleet_name, nodes, plane)
    except BadInput as exc:
        message = str(exc)
        for word in LIBRARY_WORDS:
            assert word not in message, message
        for suggested in re.findall(r"hostname: .*?e\.g\. `([^`]*)`", message):
            assert is_hostname_label(suggested), message
        return
    fleet = parse_fleet(text, path)
    assert [n.name for n in fleet.nodes] == [n for n, _ in nodes]
    assert fleet.control_plane.name == (plane if plane is not None else nodes[0][0])
