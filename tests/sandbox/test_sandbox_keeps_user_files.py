"""`sandbox down` removes only what `sandbox up` made."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sandbox


def test_down_in_a_real_fleet_folder_keeps_the_fleet_and_its_key(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("sandbox commands need root")
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("name: team1\nnodes:\n  - {name: laperouse, address: 192.0.2.1, "
                     "role: control-plane}\n")
    key = tmp_path / ".pifleet" / "id_ed25519"
    key.parent.mkdir()
    key.write_text("not really a key\n")
    result = subprocess.run([sys.executable, "-m", "pifleet", "sandbox", "down", "--dir",
                             str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr  # no sandbox here: bad input, nothing touched
    assert "no sandbox here" in result.stderr
    assert fleet.exists() and key.exists()
