"""The guard against real virtual Pis: every command that talks to nodes, run against an unused
address inside the sandbox's own network, with a wrong password, and with a changed host key;
and the sandbox's own commands given bad input while it runs. See tests/guard.py.
"""

from __future__ import annotations

import ipaddress

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
    fleet_text,
    leaf_commands,
    parametrize,
    pin_keys,
    run_all,
    talks_to_nodes,
)
from pifleet.sandbox import Sandbox

pytestmark = pytest.mark.sandbox

NODE_COMMANDS = [p for p in leaf_commands() if talks_to_nodes(p)]
SITUATIONS = ("unused-address", "wrong-password", "changed-host-key")
SANDBOX_BAD_INPUT = {
    "restart-unknown-node": ["sandbox", "restart", "--nodes", "nosuch"],
    "up-fewer-nodes": ["sandbox", "up", "--nodes", "1"],
    "up-other-arch": ["sandbox", "up", "--nodes", "3", "--arch", "arm64"],
}


def make_case(path: Path_, situation: str, ws: Workspace, sandbox: Sandbox,
              as_json: bool) -> Case:
    if situation == "unused-address":
        # Inside the sandbox's own /24, where no node is: nothing answers, nothing leaves.
        unused = str(ipaddress.ip_network(sandbox.network)[200])
        ws.fleet.write_text(fleet_text([unused]))
        pin_keys(ws, [unused])
        expect = {1}
    elif situation == "wrong-password":
        ws.fleet.write_text(fleet_text([sandbox.nodes[0].address], password="not-hypriot"))
        expect = {1} if path == ("trust",) else {2}  # never trusted: the others refuse
    else:
        ws.fleet.write_text(fleet_text([sandbox.nodes[0].address]))
        pin_keys(ws, [sandbox.nodes[0].address])  # a key the node does not have
        expect = {1}
    return Case(path, situation, command_args(path, ws), ws, expect, [NODE], as_json)


CASES = [(p, s, j) for p in NODE_COMMANDS for s in SITUATIONS for j in (False, True)]
BAD_INPUT = [(name, j) for name in SANDBOX_BAD_INPUT for j in (False, True)]


@pytest.fixture(scope="module")
def outcomes(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Results:
    base = tmp_path_factory.mktemp("guard-nodes")
    cases = [make_case(p, s, Workspace(base / case_id(p, s, j)), sandbox, j)
             for p, s, j in CASES]
    for name, as_json in BAD_INPUT:
        words = SANDBOX_BAD_INPUT[name]
        ws = Workspace(base / f"{name}{'-json' if as_json else ''}")
        cases.append(Case(tuple(words[:2]), name, [*words[2:], "--dir", str(sandbox.directory)],
                          ws, {2}, [str(sandbox.directory), "nosuch"], as_json))
    return run_all(cases)


@parametrize(CASES)
def test_node_command_fails_cleanly(outcomes: Results, path: Path_, situation: str,
                                    as_json: bool) -> None:
    check(*outcomes[case_id(path, situation, as_json)])


@pytest.mark.parametrize(("name", "as_json"), BAD_INPUT,
                         ids=[n + ("-json" if j else "") for n, j in BAD_INPUT])
def test_sandbox_bad_input_changes_nothing(outcomes: Results, sandbox: Sandbox, name: str,
                                           as_json: bool) -> None:
    words = SANDBOX_BAD_INPUT[name]
    check(*outcomes[case_id(tuple(words[:2]), name, as_json)])
    assert sandbox.fleet_path.exists()


def test_the_sandbox_still_answers_after_all_that(sandbox: Sandbox, outcomes: Results) -> None:
    from pifleet.sandbox.runtime import ssh_banner

    assert all(ssh_banner(node.address) for node in sandbox.nodes)
