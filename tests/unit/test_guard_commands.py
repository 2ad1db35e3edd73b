"""The guard, without nodes: every command with no fleet file, a broken one, an empty one, an
invalid one, nodes that are not trusted yet or whose port is closed, and empty or unknown names
in `--nodes`. See tests/guard.py for what each case must do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from guard import (
    NODE,
    Case,
    Path_,
    Results,
    Workspace,
    case_id,
    check,
    command_args,
    command_of,
    fleet_text,
    free_port,
    has_node_names_option,
    leaf_commands,
    parametrize,
    pin_keys,
    run_all,
    talks_to_nodes,
    with_nodes,
)

FLEET_FILES = {
    "missing": None,
    "broken": "name: guard\nnodes: [\n",
    "empty": "",
    "invalid": "name: guard\nnodes:\n  - {name: Black_Pearl, address: 10.0.0.1, role: master}\n",
}
NODE_SITUATIONS = ("untrusted", "closed-port", "broken-known-hosts")
SELECTIONS = {"nodes-empty": "", "nodes-unknown": "nosuch", "nodes-empty-name": f"{NODE},"}
COMMANDS = leaf_commands()
WORKS_WITHOUT_A_FLEET = {("devices",), ("sandbox", "list")}


def situations(path: Path_) -> list[str]:
    found = [*FLEET_FILES, *NODE_SITUATIONS]
    if path == ("sandbox", "up"):
        found.remove("missing")  # with no fleet file in the folder it would build a sandbox
    if has_node_names_option(path):
        found += list(SELECTIONS)
    return found


def make_case(path: Path_, situation: str, ws: Workspace, as_json: bool) -> Case:
    args = command_args(path, ws)
    names = [ws.fleet.name, str(ws.dir), ws.image.name]
    if situation in FLEET_FILES:
        text = FLEET_FILES[situation]
        if text is not None:
            ws.fleet.write_text(text)
        if path == ("init",):
            expect = {0} if text is None else {2}  # init writes a missing file, keeps others
        else:
            expect = {0} if path in WORKS_WITHOUT_A_FLEET else {2}
        return Case(path, situation, args, ws, expect, names, as_json)
    port = free_port()
    ws.fleet.write_text(fleet_text(["127.0.0.1"], port=port))
    if situation != "untrusted":
        pin_keys(ws, ["127.0.0.1"], port)
    if situation == "broken-known-hosts":
        known = ws.dir / ".pifleet" / "known_hosts"
        known.write_text(known.read_text() + "127.0.0.2 ssh-ed25519 AAAA!!not-base64\n")
    if situation in SELECTIONS:
        return Case(path, situation, with_nodes(args, SELECTIONS[situation]), ws, {2},
                    ["--nodes", "nosuch", str(ws.dir)], as_json)
    if situation == "broken-known-hosts" and talks_to_nodes(path):
        # trust may stop before contacting (2) or fail on the node (1); the others refuse.
        expect = {1, 2} if path == ("trust",) else {2}
        return Case(path, situation, args, ws, expect, ["known_hosts", NODE], as_json)
    if talks_to_nodes(path):
        # Not trusted yet is bad input (nothing contacted), except for trust, which contacts.
        expect = {2} if situation == "untrusted" and path != ("trust",) else {1}
        return Case(path, situation, args, ws, expect, [NODE], as_json)
    expect = {0} if path in WORKS_WITHOUT_A_FLEET | {("names",)} else {2}
    return Case(path, situation, args, ws, expect, names, as_json)


CASES = [(path, situation, as_json) for path in COMMANDS for situation in situations(path)
         for as_json in (False, True)]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Results:
    base = tmp_path_factory.mktemp("guard")
    return run_all([make_case(path, situation, Workspace(base / case_id(path, situation, as_json)),
                              as_json) for path, situation, as_json in CASES])


@parametrize(CASES)
def test_command_fails_cleanly(outcomes: Results, path: Path_, situation: str,
                               as_json: bool) -> None:
    check(*outcomes[case_id(path, situation, as_json)])


def test_the_guard_sees_every_command() -> None:
    words = {" ".join(p) for p in COMMANDS}
    assert {"init", "names", "flash", "devices", "trust", "run", "sandbox up", "sandbox down",
            "sandbox list", "sandbox restart"} <= words


@pytest.mark.parametrize("path", COMMANDS, ids=["-".join(p) for p in COMMANDS])
def test_every_command_can_be_exercised(path: Path_, tmp_path: Path) -> None:
    """A command with required arguments must have them in guard.command_args, or every case
    above would only prove that click refuses a missing argument."""
    required = [p.name for p in command_of(path).params if p.required]
    if required:
        assert command_args(path, Workspace(tmp_path)), (
            f"add `{' '.join(path)}` to command_args in tests/guard.py (it requires "
            f"{', '.join(map(str, required))})")
