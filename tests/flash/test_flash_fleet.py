"""`pifleet --fleet F flash ... --node NAME`: hostname, user and key from the fleet file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from flashhelp import boot_volume, run

FLEET = """name: lab
ssh:
  user: student
nodes:
  - name: brig
    address: 192.168.5.11
    role: control-plane
  - name: sloop
    address: 192.168.5.12
"""


def test_cards_for_fleet_nodes_carry_the_fleet_key(
        packed: Callable[[str, str], Path], tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    outs = [tmp_path / "brig.img", tmp_path / "sloop.img"]
    proc = run("--fleet", fleet, "flash", packed("raspios_trixie", "xz"), *outs,
               "--node", "brig", "--node", "sloop")
    assert proc.returncode == 0, proc.stderr
    public = (tmp_path / ".pifleet" / "id_ed25519.pub").read_text().strip()
    assert public.startswith("ssh-ed25519 ")
    assert (tmp_path / ".pifleet" / "id_ed25519").stat().st_mode & 0o777 == 0o600
    for out, name in zip(outs, ["brig", "sloop"], strict=True):
        data = yaml.safe_load(boot_volume(out).read("user-data"))
        assert data["hostname"] == name
        assert data["user"]["name"] == "student"
        assert data["user"]["ssh_authorized_keys"] == [public]
    private = (tmp_path / ".pifleet" / "id_ed25519").read_text()
    assert private not in proc.stdout + proc.stderr


def test_unknown_node_is_bad_input(packed: Callable[[str, str], Path], tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    out = tmp_path / "x.img"
    proc = run("--fleet", fleet, "flash", packed("raspios_trixie", "xz"), out, "--node", "ketch")
    assert proc.returncode == 2 and "ketch" in proc.stderr
    assert not out.exists()
