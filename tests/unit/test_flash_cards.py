"""Per-card settings: hostnames per target, fleet nodes, keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from pifleet.errors import BadInput
from pifleet.flash.cards import Common, for_targets
from pifleet.fleet.load import parse_fleet

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0123456789abcdef0123456789abcdef01234567 me@x"
FLEET = """
name: lab
ssh:
  user: student
nodes:
  - name: brig
    address: 192.168.5.11
    role: control-plane
  - name: sloop
    address: 192.168.5.12
"""


def test_no_settings_means_plain_writes() -> None:
    assert for_targets(2, Common(), [], [], None, None) == [None, None]


def test_hostnames_one_per_target(tmp_path: Path) -> None:
    key = tmp_path / "id.pub"
    key.write_text(KEY + "\n")
    boots = for_targets(2, Common(ssh_key_files=[key]), ["a", "b"], [], None, None)
    assert [b.hostname for b in boots if b] == ["a", "b"]
    assert all(b and b.ssh_keys == (KEY,) and b.user == "pirate" for b in boots)
    with pytest.raises(BadInput, match="one per"):
        for_targets(2, Common(), ["a"], [], None, None)
    with pytest.raises(BadInput, match="own hostname"):
        for_targets(2, Common(), ["a", "a"], [], None, None)


def test_next_unused_names_when_settings_but_no_names() -> None:
    boots = for_targets(3, Common(user="student"), [], [], None, None)
    names = [b.hostname for b in boots if b]
    assert len(set(names)) == 3


def test_nodes_from_the_fleet_carry_user_and_fleet_key() -> None:
    fleet = parse_fleet(FLEET)
    boots = for_targets(2, Common(), [], ["sloop", "brig"], fleet, {"sloop": KEY, "brig": KEY})
    assert [(b.hostname, b.user, b.ssh_keys) for b in boots if b] == [
        ("sloop", "student", (KEY,)), ("brig", "student", (KEY,))]
    with pytest.raises(BadInput, match="no node named"):
        for_targets(1, Common(), [], ["nope"], fleet, {})
    with pytest.raises(BadInput, match="fleet"):
        for_targets(1, Common(), [], ["brig"], None, None)


def test_private_key_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n")
    with pytest.raises(BadInput, match="private key"):
        for_targets(1, Common(ssh_key_files=[key]), ["a"], [], None, None)
