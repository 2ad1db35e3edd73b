"""Bringing a sandbox node back (`sandbox restart`, `sandbox up` converging), and what `down`
refuses or removes. The real CLI against real virtual Pis."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pifleet.sandbox import Sandbox
from pifleet.sandbox.runtime import ssh_banner

SSHRun = Callable[[str, str], tuple[int, str, str]]

pytestmark = pytest.mark.sandbox


def pifleet(*args: str, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pifleet", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


def boots(sandbox: Sandbox, name: str) -> int:
    status = sandbox.directory / ".sandbox" / "nodes" / name / "status.json"
    return int(json.loads(status.read_text())["boots"]) if status.exists() else 0


def supervisor(sandbox: Sandbox, name: str) -> str:
    return (sandbox.directory / ".sandbox" / "nodes" / name / "supervisor.pid").read_text()


def stop_sshd(node_ssh: SSHRun, address: str) -> None:
    status, _, err = node_ssh(address, "echo hypriot | sudo -S -p '' systemctl stop ssh")
    assert status == 0, err
    deadline = time.monotonic() + 10
    while ssh_banner(address, timeout=1) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not ssh_banner(address, timeout=1)


def test_the_fleet_file_holding_the_password_is_private(sandbox: Sandbox) -> None:
    assert "password" in sandbox.fleet_path.read_text()
    assert stat.S_IMODE(sandbox.fleet_path.stat().st_mode) == 0o600


def test_restart_brings_back_a_node_whose_sshd_was_stopped(sandbox: Sandbox,
                                                           node_ssh: SSHRun) -> None:
    node, other = sandbox.nodes[1], sandbox.nodes[2]
    other_supervisor = supervisor(sandbox, other.name)
    stop_sshd(node_ssh, node.address)
    result = pifleet("sandbox", "restart", "--dir", str(sandbox.directory),
                     "--nodes", node.name)
    assert result.returncode == 0, result.stderr
    assert ssh_banner(node.address)
    assert node.name in result.stdout
    assert supervisor(sandbox, other.name) == other_supervisor  # only the node asked for


def test_up_restarts_a_running_node_whose_sshd_does_not_answer(sandbox: Sandbox,
                                                               node_ssh: SSHRun) -> None:
    node = sandbox.nodes[2]
    stop_sshd(node_ssh, node.address)
    began = time.monotonic()
    result = pifleet("sandbox", "up", "--nodes", str(len(sandbox.nodes)),
                     "--dir", str(sandbox.directory))
    took = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert ssh_banner(node.address)
    assert f"sshd on {node.address} does not answer" in result.stderr
    assert "restarting the node" in result.stderr
    assert "\x1b" not in result.stderr
    assert took < 60, f"up took {took:.0f} s to notice and restart one node"


def test_restart_refuses_unknown_nodes_and_folders_without_a_sandbox(
        sandbox: Sandbox, tmp_path: Path) -> None:
    before = {n.name: supervisor(sandbox, n.name) for n in sandbox.nodes}
    for args in (["--dir", str(sandbox.directory), "--nodes", "nosuch"],
                 ["--dir", str(sandbox.directory), "--nodes", ""],
                 ["--dir", str(tmp_path / "nothing-here")]):
        result = pifleet("--json", "sandbox", "restart", *args)
        assert result.returncode == 2, result.stderr
        assert json.loads(result.stdout.splitlines()[-1])["status"] == "error"
    assert before == {n.name: supervisor(sandbox, n.name) for n in sandbox.nodes}
    assert not (tmp_path / "nothing-here").exists()


def test_down_on_a_folder_without_a_sandbox_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "mistyped"):
        result = pifleet("sandbox", "down", "--dir", str(folder))
        assert result.returncode == 2, result.stderr
        assert "no sandbox here" in result.stderr
    assert (tmp_path / "empty").is_dir() and not (tmp_path / "mistyped").exists()


def test_down_removes_the_sandbox_fleets_logs(tmp_path: Path) -> None:
    directory = tmp_path / "short-lived"
    state = tmp_path / "state"
    env = {"XDG_STATE_HOME": str(state)}
    up = pifleet("--json", "sandbox", "up", "--nodes", "1", "--dir", str(directory), env=env)
    try:
        assert up.returncode == 0, up.stderr
        fleet = directory / "fleet.yaml"
        trusted = pifleet("--fleet", str(fleet), "trust", env=env)
        assert trusted.returncode == 0, trusted.stderr
        # The command line is what was done (kept); what it printed is output (not kept).
        ran = pifleet("--fleet", str(fleet), "run", "--", "echo not-for-the-$((6*7))-log",
                      env=env)
        assert ran.returncode == 0 and "not-for-the-42-log" in ran.stdout
        logs = list(state.rglob("*.log"))
        assert logs and all(os.stat(p).st_mode & 0o077 == 0 for p in logs)
        assert "not-for-the-42-log" not in "".join(p.read_text() for p in logs)
        assert "hypriot" not in "".join(p.read_text() for p in logs)
    finally:
        down = pifleet("sandbox", "down", "--dir", str(directory), env=env)
    assert down.returncode == 0, down.stderr
    left = list((state / "pifleet").iterdir()) if (state / "pifleet").exists() else []
    assert left == [], f"left behind: {left}"
