"""The guard against the whole class of crash and wrong exit status: every command the CLI has
(found from its click tree, so commands added later are covered without touching this file) run
as a user would, in a child process, in situations that must fail cleanly.

A case passes when: no traceback (or "internal error") reaches stderr; the exit status is the
expected one (1 or 2 when something is wrong); a failure names the node or the file; and under
`--json` every stdout line is JSON, the last one the error object with the same exit status.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import click
import paramiko
import pytest

from pifleet.cli import cli
from pifleet.cli.options import NodeNames

Path_ = tuple[str, ...]

# Commands that never contact a node. Every other command is expected to need the fleet file
# and its nodes: so a new command is held to the strict rules until it is listed here.
NODE_FREE: set[Path_] = {("init",), ("names",), ("devices",), ("flash",), ("sandbox", "up"),
                         ("sandbox", "down"), ("sandbox", "list"), ("sandbox", "restart")}
NODE = "laperouse"


# `trust` ends in an internal error when no node gets past the host-key step, in the pyinfra
# engine (`pifleet.remote.engine`), which the engine of our own replaces. Until then those
# cases are expected to fail; once that module is gone they count like every other case.
OLD_ENGINE = importlib.util.find_spec("pifleet.remote.engine") is not None


def case_id(path: Path_, situation: str, as_json: bool) -> str:
    return f"{'-'.join(path)}-{situation}" + ("-json" if as_json else "")


def parametrize(cases: list[tuple[Path_, str, bool]]) -> pytest.MarkDecorator:
    """Parametrize a test over (path, situation, as_json), marking the cases a known defect
    holds back."""
    def marks(path: Path_) -> list[pytest.MarkDecorator]:
        if OLD_ENGINE and path == ("trust",):
            return [pytest.mark.xfail(reason="trust with no node past the host key: pyinfra "
                                      "engine", strict=False)]
        return []

    return pytest.mark.parametrize(("path", "situation", "as_json"),
                                   [pytest.param(*c, marks=marks(c[0])) for c in cases],
                                   ids=[case_id(*c) for c in cases])


def leaf_commands(group: click.Group = cli, prefix: Path_ = ()) -> list[Path_]:
    """Every runnable command and subcommand, as its words (`("sandbox", "up")`)."""
    ctx = click.Context(group)
    found: list[Path_] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{' '.join((*prefix, name))} is listed but not found"
        if isinstance(command, click.Group):
            found += leaf_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def command_of(path: Path_) -> click.Command:
    command: click.Command = cli
    for word in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), word)
        assert found is not None
        command = found
    return command


def has_node_names_option(path: Path_) -> bool:
    """Whether the command selects nodes by name with `--nodes A,B`."""
    return any(isinstance(p, click.Option) and "--nodes" in p.opts
               and isinstance(p.type, NodeNames) for p in command_of(path).params)


def talks_to_nodes(path: Path_) -> bool:
    return path not in NODE_FREE


@dataclass
class Workspace:
    """A folder of one case: the fleet file (maybe absent), an image file, a card file."""

    dir: Path
    fleet: Path = field(init=False)
    image: Path = field(init=False)
    out: Path = field(init=False)

    def __post_init__(self) -> None:
        self.fleet = self.dir / "fleet.yaml"
        self.image = self.dir / "pi.img"
        self.out = self.dir / "card.img"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.image.write_bytes(b"\0" * 4096)


# What each command needs to do its work. A command with required arguments that is missing
# here fails `test_every_command_can_be_exercised`, so a new command cannot slip past the guard.
def command_args(path: Path_, ws: Workspace) -> list[str]:
    table: dict[Path_, list[str]] = {
        ("init",): ["--node", f"{NODE}=127.0.0.1"],
        ("flash",): [str(ws.image), str(ws.out), "--node", NODE, "--yes"],
        ("run",): ["--", "true"],
        ("sandbox", "up"): ["--dir", str(ws.dir), "--nodes", "1"],
        ("sandbox", "down"): ["--dir", str(ws.dir)],
        ("sandbox", "restart"): ["--dir", str(ws.dir)],
        ("kubeconfig",): ["--output", str(ws.dir / "kubeconfig")],
        ("dashboard",): ["--no-browser"],
    }
    return list(table.get(path, []))


def with_nodes(args: list[str], value: str) -> list[str]:
    """`args` with `--nodes VALUE` put before any `--` separator."""
    cut = args.index("--") if "--" in args else len(args)
    return [*args[:cut], "--nodes", value, *args[cut:]]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fleet_text(addresses: list[str], *, port: int = 22, password: str = "hypriot") -> str:
    names = [NODE, "black-pearl", "fregate"]
    lines = ["name: guard", "nodes:"]
    for i, address in enumerate(addresses):
        role = "control-plane" if i == 0 else "worker"
        lines.append(f"  - {{name: {names[i]}, address: {address}, role: {role}}}")
    lines += ["ssh:", f"  port: {port}", f"  password: {password}"]
    # Nothing may leave this machine, not even a name lookup of the real package repository.
    closed = f"http://127.0.0.1:{free_port()}/core:/stable:/v{{minor}}/deb/"
    lines += ["kubernetes:", f"  package_repository: {closed}",
              f"  package_key_url: {closed}Release.key", ""]
    return "\n".join(lines)


def pin_keys(ws: Workspace, hosts: list[str], port: int = 22) -> None:
    """Make the fleet key and pin a made-up host key for each host, as if `trust` had been
    there: the nodes count as trusted."""
    from pifleet.fleet import load_fleet
    from pifleet.remote.keys import ensure_key

    ensure_key(load_fleet(ws.fleet))
    known = ws.dir / ".pifleet" / "known_hosts"
    key = paramiko.ECDSAKey.generate()
    names = [h if port == 22 else f"[{h}]:{port}" for h in hosts]
    known.write_text("".join(f"{n} {key.get_name()} {key.get_base64()}\n" for n in names))


@dataclass
class Case:
    """One command in one situation, and what it must do there."""

    path: Path_
    situation: str
    args: list[str]
    ws: Workspace
    expect: set[int]
    must_name: list[str]
    json: bool = False

    @property
    def id(self) -> str:
        return case_id(self.path, self.situation, self.json)


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def run_case(case: Case, timeout: float = 120) -> Outcome:
    env = {k: v for k, v in os.environ.items() if k != "PIFLEET_FLEET"}
    env["XDG_STATE_HOME"] = str(case.ws.dir / "state")
    env["XDG_CACHE_HOME"] = str(case.ws.dir / "cache")
    argv = [sys.executable, "-m", "pifleet", "--fleet", str(case.ws.fleet)]
    argv += ["--json"] if case.json else []
    try:
        done = subprocess.run([*argv, *case.path, *case.args], cwd=case.ws.dir, env=env,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as exc:
        return Outcome(-1, str(exc.stdout or ""), f"still running after {timeout} s")
    return Outcome(done.returncode, done.stdout, done.stderr)


Results = dict[str, tuple[Case, Outcome]]


def run_all(cases: list[Case], workers: int = 4) -> Results:
    """Every case at once (a few at a time): the guard must add minutes, not tens of them."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return {c.id: (c, o) for c, o in zip(cases, pool.map(run_case, cases), strict=True)}


def check(case: Case, outcome: Outcome) -> None:
    """The guard's assertions for one case."""
    shown = f"{' '.join(case.path)} ({case.situation}): exit {outcome.code}\n" \
            f"stderr: {outcome.stderr[-2000:]}\nstdout: {outcome.stdout[-1000:]}"
    assert "Traceback" not in outcome.stderr, shown
    assert "internal error" not in outcome.stderr, shown  # an exception pifleet did not expect
    assert outcome.code in case.expect, shown
    said = outcome.stderr
    if case.json:
        lines = [json.loads(line) for line in outcome.stdout.splitlines()]
        if outcome.code != 0:
            assert lines, f"stdout is empty under --json: {shown}"
            last = lines[-1]
            assert last.get("status") == "error", shown
            assert last.get("exit_code") == outcome.code, shown
            assert last.get("message"), shown
            said += str(last["message"])  # a script reads the message here
    if outcome.code != 0:
        assert said.strip(), shown
        assert any(word in said for word in case.must_name), \
            f"the message names none of {case.must_name}: {shown}"


def both_ways(make: Callable[[bool], Case]) -> Iterator[Case]:
    """A case as a person runs it and as a script does (`--json`)."""
    yield make(False)
    yield make(True)
