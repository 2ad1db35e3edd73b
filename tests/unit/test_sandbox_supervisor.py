"""The supervisor's power-supply logic, with stand-ins for mount and systemd-nspawn."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pifleet.sandbox import supervisor
from pifleet.sandbox.supervisor import REBOOT_STATUS, NodeRun, Supervisor


def _run(tmp_path: Path) -> NodeRun:
    return NodeRun(name="fregate", machine="pifleet-0a0b0c-02", base="/base",
                   upper=str(tmp_path / "upper"), work=str(tmp_path / "work"),
                   root=str(tmp_path / "root"), netns="pifleet-0a0b0c-02",
                   status=str(tmp_path / "status.json"))


def test_nspawn_command_has_the_measured_flags(tmp_path: Path) -> None:
    argv = supervisor.nspawn_argv(_run(tmp_path))
    for flag in ("--boot", "--register=no", "--keep-unit", "--capability=CAP_NET_ADMIN",
                 "--network-namespace-path=/run/netns/pifleet-0a0b0c-02",
                 "--hostname=fregate"):
        assert flag in argv
    assert argv[argv.index("-D") + 1] == str(tmp_path / "root")
    assert supervisor.NSPAWN_ENV == {"SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network",
                                     "SYSTEMD_NSPAWN_LOCK": "0"}
    mount = supervisor.mount_argv(_run(tmp_path))
    assert mount[-1] == str(tmp_path / "root") and "lowerdir=/base" in mount[-2]


def test_config_round_trip(tmp_path: Path) -> None:
    run = _run(tmp_path)
    run.save(tmp_path / "run.json")
    assert NodeRun.load(tmp_path / "run.json") == run


def _fake_nspawn(tmp_path: Path, codes: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each "boot" exits with the next code from `codes` (after a short life)."""
    script = tmp_path / "nspawn.py"
    counter = tmp_path / "boots"
    script.write_text(
        "import pathlib, sys, time\n"
        f"c = pathlib.Path({str(counter)!r})\n"
        "n = int(c.read_text()) if c.exists() else 0\n"
        "c.write_text(str(n + 1))\n"
        f"codes = {codes!r}\n"
        "time.sleep(0.05)\n"
        "sys.exit(codes[n] if n < len(codes) else 0)\n")
    monkeypatch.setattr(supervisor.cgroups, "enter", lambda machine: [])  # no host cgroups
    monkeypatch.setattr(supervisor, "mount_argv", lambda run: ["true"])
    monkeypatch.setattr(supervisor, "nspawn_argv", lambda run: [sys.executable, str(script)])
    monkeypatch.setattr(supervisor, "MIN_BOOT_SECONDS", 0.0)


def test_reboot_status_boots_again_and_other_exits_stop(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_nspawn(tmp_path, [REBOOT_STATUS, REBOOT_STATUS, 0], monkeypatch)
    assert Supervisor(_run(tmp_path)).main() == 0
    assert (tmp_path / "boots").read_text() == "3"
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "stopped" and status["boots"] == 3 and status["exit"] == 0


def test_a_failing_node_is_not_restarted(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_nspawn(tmp_path, [1], monkeypatch)
    assert Supervisor(_run(tmp_path)).main() == 1
    assert (tmp_path / "boots").read_text() == "1"


def test_reboot_loop_gives_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_nspawn(tmp_path, [REBOOT_STATUS] * 20, monkeypatch)
    monkeypatch.setattr(supervisor, "MIN_BOOT_SECONDS", 10.0)
    assert Supervisor(_run(tmp_path)).main() == 1
    assert int((tmp_path / "boots").read_text()) == supervisor.MAX_FAST_REBOOTS
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "failed"


def test_sigterm_stops_the_node_and_the_supervisor(tmp_path: Path) -> None:
    """The real module as a process: SIGTERM reaches the booted "node" and ends both."""
    node = tmp_path / "node.py"
    node.write_text("import signal, sys, time\n"
                    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
                    "time.sleep(60)\n")
    run = _run(tmp_path)
    run.save(tmp_path / "run.json")
    code = ("import sys; from pifleet.sandbox import supervisor as s\n"
            "s.mount_argv = lambda run: ['true']\n"
            "s.cgroups.enter = lambda machine: []\n"
            f"s.nspawn_argv = lambda run: [sys.executable, {str(node)!r}]\n"
            f"sys.exit(s.main([{str(tmp_path / 'run.json')!r}]))\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 10
    while not (tmp_path / "status.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "stopped"
    assert threading.active_count() >= 1
