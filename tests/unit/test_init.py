"""`pifleet init`: the commented template, its round trip, the questions and the refusals."""

from __future__ import annotations

import os
import pty
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pifleet.cli import cli
from pifleet.cli import init as init_module
from pifleet.errors import BadInput
from pifleet.fleet import load_fleet
from pifleet.fleet.create import default_fleet_name, new_fleet_text, parse_node_spec
from pifleet.fleet.load import parse_fleet
from pifleet.fleet.template import render_fleet

FULL = """\
name: class-b
nodes:
  - {name: laperouse, address: 192.168.7.10, role: control-plane, tower: a, team: blue}
  - name: black-pearl
    address: "fd00::11"
    ssh: {user: pi, port: 2222, private_key: keys/bp, password: "s3cret: yes"}
  - {name: fregate, address: fregate.local, team: "007"}
ssh: {user: pirate, port: 22, password: null, known_hosts: /etc/pifleet/known_hosts}
kubernetes:
  version: "1.33.4"
  pod_cidr: 10.42.0.0/16
  service_cidr: 10.43.0.0/16
  dashboard: none
  package_repository: "http://10.99.0.1:8080/core:/stable:/v{minor}/deb/"
  package_key_url: "http://10.99.0.1:8080/core:/stable:/v{minor}/deb/Release.key"
  token_ttl: 30m
apt: {proxy: "http://10.99.0.1:3142"}
"""


def _run(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real entry point, as a user runs it (exit codes come from run_guarded)."""
    env = {k: v for k, v in os.environ.items() if k != "PIFLEET_FLEET"}
    return subprocess.run([sys.executable, "-m", "pifleet", *args], cwd=tmp_path, env=env,
                          input=stdin or "", capture_output=True, text=True, timeout=60,
                          check=False)


def test_render_reads_back_to_the_same_values() -> None:
    fleet = parse_fleet(FULL)
    text = render_fleet(fleet)
    again = parse_fleet(text)
    assert again.model_dump() == fleet.model_dump()
    assert again.nodes[1].ssh.password == "s3cret: yes" and again.nodes[2].team == "007"
    assert again.kubernetes.version == "1.33.4" and again.ssh.password is None


def test_the_template_explains_every_section() -> None:
    text = render_fleet(parse_fleet(FULL))
    lines = text.splitlines()
    for key in ("name", "nodes", "ssh", "kubernetes", "apt"):
        at = lines.index(next(line for line in lines if line.startswith(f"{key}:")))
        assert lines[at - 1].startswith("# "), f"no comment above {key}"
    for word in ("control-plane", "pifleet names", "pifleet trust", "{minor}", "pod_cidr",
                 "token_ttl", "proxy"):
        assert word in text


def test_init_from_flags_writes_a_file_that_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    done = _run(tmp_path, "init", "--name", "lab", "--node", "laperouse=192.168.1.10",
                "--node", "black-pearl=black-pearl.local", "--node", "fregate=fd00::3")
    assert done.returncode == 0, done.stderr
    assert "control plane laperouse" in done.stdout
    fleet = load_fleet(path)
    assert fleet.name == "lab"
    assert [(n.name, n.address, n.role) for n in fleet.nodes] == [
        ("laperouse", "192.168.1.10", "control-plane"),
        ("black-pearl", "black-pearl.local", "worker"),
        ("fregate", "fd00::3", "worker")]
    assert fleet.ssh.user == "pirate" and fleet.kubernetes.version == "1.34"
    assert path.read_text().startswith("# fleet.yaml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["fleet.yaml"]  # no temporary file left


def test_control_plane_option_and_default_name(tmp_path: Path) -> None:
    folder = tmp_path / "ship-lab"
    folder.mkdir()
    result = CliRunner().invoke(cli, ["--fleet", str(folder / "fleet.yaml"), "--json", "init",
                                      "--node", "laperouse=10.0.0.1", "--node",
                                      "fregate=10.0.0.2", "--control-plane", "fregate"])
    assert result.exit_code == 0, result.output
    assert '"control_plane": "fregate"' in result.output
    fleet = load_fleet(folder / "fleet.yaml")
    assert fleet.name == "ship-lab"
    assert [n.role for n in fleet.nodes] == ["worker", "control-plane"]


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("mine\n")
    path.chmod(0o600)
    refused = _run(tmp_path, "init", "--node", "laperouse=10.0.0.1")
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert path.read_text() == "mine\n"
    forced = _run(tmp_path, "init", "--node", "laperouse=10.0.0.1", "--force")
    assert forced.returncode == 0, forced.stderr
    assert load_fleet(path).nodes[0].name == "laperouse"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # --force keeps the file's mode


@pytest.mark.parametrize(("args", "words"), [
    (["--node", "Laperouse=10.0.0.1"], ["not a valid hostname", "e.g. `laperouse`"]),
    (["--node", "laperouse=10.0.0.1", "--node", "fregate=10.0.0.1"], ["already used"]),
    (["--node", "laperouse=10.0.0.999"], ["not a valid IPv4 address"]),
    (["--node", "laperouse=10.244.0.9"], ["inside the pod network"]),
    (["--node", "laperouse"], ["NAME=ADDRESS"]),
    (["--node", "laperouse=10.0.0.1", "--control-plane", "fregate"], ["no such node"]),
    (["--name", "a b", "--node", "laperouse=10.0.0.1"], ["cannot name a fleet"]),
    ([], ["no --node given", "no terminal"]),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, args: list[str],
                                              words: list[str]) -> None:
    done = _run(tmp_path, "init", *args)
    assert done.returncode == 2
    assert all(w in done.stderr for w in words), done.stderr
    assert list(tmp_path.iterdir()) == []


def test_several_problems_are_all_listed() -> None:
    with pytest.raises(BadInput) as caught:
        new_fleet_text("fleet.yaml", "lab", [("Laperouse", "10.0.0.1"), ("fregate", "10.0.0.1")])
    message = str(caught.value)
    assert "not a valid hostname" in message and "already used" in message
    assert "nothing written" in message


def test_node_specs_and_default_name(tmp_path: Path) -> None:
    assert parse_node_spec(" laperouse = 10.0.0.1 ") == ("laperouse", "10.0.0.1")
    assert parse_node_spec("fregate=fd00::1") == ("fregate", "fd00::1")
    with pytest.raises(BadInput):
        parse_node_spec("=10.0.0.1")
    assert default_fleet_name(tmp_path / "My Lab!" / "fleet.yaml") == "My-Lab"
    assert default_fleet_name("/fleet.yaml") == "pifleet"


def test_asks_in_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(init_module, "stdin_is_terminal", lambda: True)
    path = tmp_path / "fleet.yaml"
    # name, count, then hostname and address for each Pi; empty answers take the suggestion.
    answers = "lab\n2\n\n10.0.0.1\nmy-ship\n\n"
    result = CliRunner().invoke(cli, ["--fleet", str(path), "init"], input=answers)
    assert result.exit_code == 0, result.output
    assert "[laperouse]" in result.output and "[black-pearl]" in result.output
    fleet = load_fleet(path)
    assert [(n.name, n.address, n.role) for n in fleet.nodes] == [
        ("laperouse", "10.0.0.1", "control-plane"), ("my-ship", "my-ship.local", "worker")]


def _answer_prompts(fd: int, answers: list[tuple[str, str]], deadline: float) -> str:
    """Wait for each prompt on the terminal `fd`, then type its answer; return all output."""
    seen = ""
    for prompt, answer in answers:
        while prompt not in seen:
            assert time.monotonic() < deadline, f"no prompt {prompt!r} in {seen!r}"
            ready, _, _ = select.select([fd], [], [], 1.0)
            if ready:
                seen += os.read(fd, 4096).decode(errors="replace")
        seen = seen[seen.index(prompt) + len(prompt):]
        os.write(fd, answer.encode() + b"\n")
    return seen


def _init_on_a_terminal(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """`pifleet init` on a new pseudo-terminal; returns the process and the terminal's other end."""
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "PIFLEET_FLEET"}
    process = subprocess.Popen([sys.executable, "-m", "pifleet", "init"], cwd=tmp_path, env=env,
                               stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    return process, controller


def test_asks_on_a_real_terminal(tmp_path: Path) -> None:
    process, controller = _init_on_a_terminal(tmp_path)
    try:
        _answer_prompts(controller, [
            ("Fleet name", "tower-a"), ("How many Raspberry Pis", "3"),
            ("Hostname of Pi 1", ""), ("Address of laperouse", "192.168.5.1"),
            ("Hostname of Pi 2", "fregate"), ("Address of fregate", "192.168.5.2"),
            ("Hostname of Pi 3 [black-pearl]", ""), ("Address of black-pearl", ""),
        ], time.monotonic() + 60)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    fleet = load_fleet(tmp_path / "fleet.yaml")
    assert fleet.name == "tower-a"
    assert [(n.name, n.address) for n in fleet.nodes] == [
        ("laperouse", "192.168.5.1"), ("fregate", "192.168.5.2"),
        ("black-pearl", "black-pearl.local")]


def test_end_of_input_at_a_question_is_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    process, controller = _init_on_a_terminal(tmp_path)
    try:
        _answer_prompts(controller, [("Fleet name", "tower-a")], time.monotonic() + 60)
        seen = ""
        while "How many Raspberry Pis" not in seen:
            seen += os.read(controller, 4096).decode(errors="replace")
        os.write(controller, b"\x04")  # Ctrl-D: the end of input
        assert process.wait(timeout=60) == 2
        rest = b""
        while select.select([controller], [], [], 0.5)[0]:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            rest += chunk
        assert b"nothing was changed" in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    assert not (tmp_path / "fleet.yaml").exists()
