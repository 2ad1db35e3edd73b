"""`pifleet trust` and `pifleet run` against real virtual Pis (real sshd, sudo, systemd)."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest
import yaml

pytestmark = pytest.mark.sandbox


def pifleet(fleet: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child process, as a user would."""
    return subprocess.run([sys.executable, "-m", "pifleet", "--fleet", str(fleet), *args],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def output_lines(result: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    lines: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        node, _, text = line.partition(": ")
        lines.setdefault(node, []).append(text)
    return lines


@pytest.fixture(scope="module")
def fleet(sandbox) -> Path:  # type: ignore[no-untyped-def]
    return Path(sandbox.fleet_path)


@pytest.fixture(scope="module")
def names(fleet: Path) -> list[str]:
    return [n["name"] for n in yaml.safe_load(fleet.read_text())["nodes"]]


def test_wrong_password_is_refused_naming_the_node(fleet: Path, names: list[str],
                                                  tmp_path: Path) -> None:
    data = yaml.safe_load(fleet.read_text())
    data["ssh"]["password"] = "not-the-password"
    other = tmp_path / "fleet.yaml"  # its own key and known_hosts: a first contact
    other.write_text(yaml.safe_dump(data))
    result = pifleet(other, "trust", "--nodes", names[0])
    assert result.returncode == 1, result.stderr
    assert names[0] in result.stderr and "authentication" in result.stderr.lower()


def test_trust_installs_key_pins_host_keys_and_sudo(fleet: Path, names: list[str]) -> None:
    result = pifleet(fleet, "trust")
    assert result.returncode == 0, result.stdout + result.stderr
    state = fleet.parent / ".pifleet"
    key = state / "id_ed25519"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in result.stdout + result.stderr
    pinned = (state / "known_hosts").read_text().splitlines()
    assert len(pinned) == len(names)
    # Key-only login and passwordless sudo, checked with the plain ssh client.
    data = yaml.safe_load(fleet.read_text())
    address = data["nodes"][0]["address"]
    check = subprocess.run(
        ["ssh", "-i", str(key), "-o", f"UserKnownHostsFile={state / 'known_hosts'}",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
         "-o", "PasswordAuthentication=no",
         f"pirate@{address}", "sudo -n id -u"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert check.returncode == 0 and check.stdout.strip() == "0", check.stderr


def test_trust_again_converges(fleet: Path) -> None:
    result = pifleet(fleet, "--json", "trust")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    host_keys = [e for e in events if e["step"] == "host key" and e["status"] == "ok"]
    assert host_keys and not any(e["changed"] for e in host_keys)


def test_run_hostname_prints_each_node_once(fleet: Path, names: list[str]) -> None:
    result = pifleet(fleet, "run", "--", "hostname")
    assert result.returncode == 0, result.stderr
    lines = output_lines(result)
    assert sorted(lines) == sorted(names)
    assert all(lines[name] == [name] for name in names)


def test_run_keeps_long_lines_whole_and_uses_the_shell(fleet: Path, names: list[str]) -> None:
    long = "x" * 500
    result = pifleet(fleet, "run", "--nodes", names[0], "--",
                     f"echo {long} | tr x y; echo $((6*7))")
    assert result.returncode == 0, result.stderr
    assert output_lines(result)[names[0]] == ["y" * 500, "42"]


def test_run_passes_tabs_and_survives_bytes_that_are_not_utf8(fleet: Path,
                                                              names: list[str]) -> None:
    result = pifleet(fleet, "run", "--nodes", names[0], "--", r"printf 'a\tb\n\377\n'")
    assert result.returncode == 0, result.stderr
    assert output_lines(result)[names[0]] == ["a\tb", "\ufffd"]


def test_run_timeout_fails_the_slow_node_only(fleet: Path, names: list[str]) -> None:
    result = pifleet(fleet, "run", "--timeout", "3", "--",
                     f"if [ $(hostname) = {names[0]} ]; then sleep 30; fi; echo done")
    assert result.returncode == 1
    assert f"{names[0]}: run/command: TimeoutError" in result.stderr
    assert sorted(output_lines(result)) == sorted(names[1:])


def test_run_failure_exits_1_and_names_the_nodes(fleet: Path, names: list[str]) -> None:
    result = pifleet(fleet, "run", "--", f"test $(hostname) != {names[1]}")
    assert result.returncode == 1
    assert names[1] in result.stderr and "exit status 1" in result.stderr
    assert names[0] not in result.stderr.split("failed:", 1)[1].splitlines()[0]


def test_json_output_is_one_object_per_line(fleet: Path) -> None:
    result = pifleet(fleet, "--json", "run", "--", "echo hello")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert all({"node", "phase", "step", "status", "changed", "duration", "message"} <= e.keys()
               for e in events)
    assert sum(e["status"] == "output" and e["message"] == "hello" for e in events) == 3


def boot_id(fleet: Path, node: str) -> str | None:
    result = pifleet(fleet, "run", "--nodes", node, "--", "cat /proc/sys/kernel/random/boot_id",
                     timeout=60)
    return output_lines(result)[node][0] if result.returncode == 0 else None


def test_reboot_through_run_and_come_back(fleet: Path, names: list[str]) -> None:
    node = names[-1]
    before = boot_id(fleet, node)
    assert before
    pifleet(fleet, "run", "--nodes", node, "--", "sudo systemctl reboot")
    deadline = time.monotonic() + 180
    after = None
    while time.monotonic() < deadline:
        after = boot_id(fleet, node)
        if after and after != before:
            break
        time.sleep(2)
    assert after and after != before
    result = pifleet(fleet, "run", "--", "hostname")
    assert result.returncode == 0 and sorted(output_lines(result)) == sorted(names)


def test_changed_host_key_is_refused(fleet: Path, names: list[str]) -> None:
    known_hosts = fleet.parent / ".pifleet" / "known_hosts"
    saved = known_hosts.read_text()
    impostor = paramiko.ECDSAKey.generate()
    lines = saved.splitlines()
    host = lines[0].split()[0]
    lines[0] = f"{host} {impostor.get_name()} {impostor.get_base64()}"
    known_hosts.write_text("\n".join(lines) + "\n")
    try:
        refused = pifleet(fleet, "trust")
        assert refused.returncode == 1
        assert "host key changed" in refused.stderr and "SHA256:" in refused.stderr
        run = pifleet(fleet, "run", "--", "true")
        assert run.returncode == 1
        failed_line = run.stderr.split("failed:", 1)[1].splitlines()[0]
        assert failed_line.split(",")[0].strip() in names
    finally:
        known_hosts.write_text(saved)
    assert pifleet(fleet, "run", "--", "true").returncode == 0


def test_harden_disables_passwords_and_keeps_a_random_one(fleet: Path, names: list[str]) -> None:
    node = names[-1]
    result = pifleet(fleet, "trust", "--nodes", node, "--harden")
    assert result.returncode == 0, result.stderr
    secret = pifleet(fleet, "trust", "--print-password", node)
    new_password = secret.stdout.strip()
    assert secret.returncode == 0 and len(new_password) >= 20 and new_password != "hypriot"
    assert new_password not in result.stdout + result.stderr
    secrets_file = fleet.parent / ".pifleet" / "secrets.yaml"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    address = next(n["address"] for n in yaml.safe_load(fleet.read_text())["nodes"]
                   if n["name"] == node)
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(address, username="pirate", password=new_password, look_for_keys=False,
                       allow_agent=False, timeout=20)
    client.close()
    assert pifleet(fleet, "run", "--nodes", node, "--", "sudo -n true").returncode == 0


def test_nothing_secret_in_the_logs(fleet: Path, names: list[str]) -> None:
    logs = Path.home() / ".local" / "state" / "pifleet"
    text = "".join(p.read_text() for p in logs.rglob("*.log"))
    assert "hypriot" not in text and "PRIVATE KEY" not in text
    shutil.rmtree(logs / yaml.safe_load(fleet.read_text())["name"], ignore_errors=True)
