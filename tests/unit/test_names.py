"""Hostname suggestions: the built-in list, skipping taken names, and `pifleet names`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pifleet.cli import cli
from pifleet.errors import BadInput
from pifleet.fleet import SHIP_NAMES, is_hostname_label, suggest_names

RFC1123_LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


def test_the_list_is_large_unique_and_made_of_lower_case_hostnames() -> None:
    assert len(SHIP_NAMES) >= 100
    assert len(set(SHIP_NAMES)) == len(SHIP_NAMES)
    for name in SHIP_NAMES:
        # Checked by hand here as well as by the module's own rule.
        assert set(name) <= RFC1123_LABEL_CHARS, name
        assert 1 <= len(name) <= 63 and name[0] != "-" and name[-1] != "-", name
        assert is_hostname_label(name)
    assert {"laperouse", "black-pearl", "fregate"} <= set(SHIP_NAMES)


@pytest.mark.parametrize("name", ["Laperouse", "black_pearl", "-fregate", "fregate-", "",
                                  "a" * 64, "la perouse", "brig.local"])
def test_invalid_labels_are_rejected(name: str) -> None:
    assert not is_hostname_label(name)


def test_count_and_order() -> None:
    assert suggest_names(3) == ["laperouse", "black-pearl", "fregate"]
    assert suggest_names(0) == []
    many = suggest_names(len(SHIP_NAMES))
    assert len(many) == len(set(many)) == len(SHIP_NAMES)


def test_taken_names_are_skipped_whatever_their_case() -> None:
    names = suggest_names(5, ["Laperouse", "fregate", "not-a-ship"])
    assert len(names) == 5
    assert "laperouse" not in names and "fregate" not in names
    assert names[:2] == ["black-pearl", "astrolabe"]


def test_asking_for_more_than_the_list_holds_is_a_clear_error() -> None:
    with pytest.raises(BadInput, match=r"only 139 unused ship names are left of 141, 140 were"):
        suggest_names(140, ["laperouse", "fregate"])
    with pytest.raises(BadInput, match="0 or more"):
        suggest_names(-1)


def test_names_command_works_without_a_fleet_file(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./fleet.yaml, and none named
    monkeypatch.delenv("PIFLEET_FLEET", raising=False)
    result = CliRunner().invoke(cli, ["names"])
    assert result.exit_code == 0
    assert result.output == "laperouse\nblack-pearl\nfregate\n"


def test_names_command_skips_the_fleets_names(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("name: lab\nnodes:\n"
                     "  - {name: laperouse, address: 10.0.0.1, role: control-plane}\n"
                     "  - {name: fregate, address: 10.0.0.2}\n")
    result = CliRunner().invoke(cli, ["--fleet", str(fleet), "names", "2"])
    assert result.exit_code == 0
    assert result.output.splitlines() == ["black-pearl", "astrolabe"]
    result = CliRunner().invoke(cli, ["--fleet", str(fleet), "--json", "names", "1"])
    assert result.output == '{"name": "black-pearl"}\n'


def test_names_command_rejects_a_bad_count(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--fleet", str(tmp_path / "f.yaml"), "names", "0"])
    assert result.exit_code == 2


def _pifleet(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PIFLEET_FLEET"}
    return subprocess.run([sys.executable, "-m", "pifleet", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_names_through_the_real_entry_point(tmp_path: Path) -> None:
    done = _pifleet("names", "4", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "laperouse\nblack-pearl\nfregate\nastrolabe\n")
    too_many = _pifleet("names", str(len(SHIP_NAMES) + 1), cwd=tmp_path)
    assert too_many.returncode == 2 and too_many.stdout == ""
    assert "unused ship names" in too_many.stderr
