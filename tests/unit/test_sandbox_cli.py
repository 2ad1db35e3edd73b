"""`pifleet sandbox` on the command line: bad input exits 2 and changes nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pifleet.cli import cli
from pifleet.cli.context import run_guarded


def _pifleet(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr("sys.argv", ["pifleet", *args])
    return run_guarded(cli)


def test_up_needs_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert _pifleet(monkeypatch, "sandbox", "up", "--dir", str(tmp_path / "d")) == 2
    assert "needs root" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_down_needs_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert _pifleet(monkeypatch, "sandbox", "down", "--dir", str(tmp_path)) == 2


def test_up_refuses_a_foreign_fleet_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("name: my-real-pis\nnodes: []\n")
    assert _pifleet(monkeypatch, "sandbox", "up", "--dir", str(tmp_path)) == 2
    assert "not written by `sandbox up`" in capsys.readouterr().err
    assert fleet.read_text() == "name: my-real-pis\nnodes: []\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet.yaml"]


@pytest.mark.parametrize("args", [["--nodes", "0"], ["--nodes", "245"], ["--arch", "mips"]])
def test_up_rejects_bad_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                args: list[str]) -> None:
    assert _pifleet(monkeypatch, "sandbox", "up", "--dir", str(tmp_path / "d"), *args) == 2
    assert not (tmp_path / "d").exists()


def test_list_json_is_one_object_per_sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from pifleet.sandbox import registry

    monkeypatch.setenv(registry.RUN_ENV, str(tmp_path / "run"))
    monkeypatch.setattr("pifleet.sandbox.network.link_names", lambda: {"eth0", "pfb-0a0b0c"})
    monkeypatch.setattr("pifleet.sandbox.network.rules_listing", lambda chain: "")
    monkeypatch.setattr("pifleet.sandbox.network.rules_readable", lambda: True)
    registry.register(registry.Entry("0a0b0c", str(tmp_path / "gone"), 12))
    assert _pifleet(monkeypatch, "--json", "sandbox", "list") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [{"directory": str(tmp_path / "gone"), "bridge": "pfb-0a0b0c",
                      "network": "10.213.12.0/24", "nodes": [], "running": [],
                      "state": "stale", "problems": [f"no state in {tmp_path / 'gone'}",
                                                     "FORWARD rules missing or changed",
                                                     "INPUT rules missing or changed"]}]
