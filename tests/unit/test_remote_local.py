"""The local halves of the remote layer: fleet key, host-key pinning, secrets."""

from __future__ import annotations

import stat
from pathlib import Path

import paramiko
import pytest

from pifleet.fleet import Fleet, Node
from pifleet.remote import hostkeys
from pifleet.remote.keys import ensure_key, key_paths
from pifleet.remote.secrets import get_secret, set_secret


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    fleet = Fleet(name="team1", nodes=[Node(name="laperouse", address="10.0.0.1",
                                            role="control-plane")])
    fleet._path = tmp_path / "fleet.yaml"
    return fleet


def test_fleet_key_is_private_and_loads_with_ssh_tools(fleet: Fleet) -> None:
    public = ensure_key(fleet)
    private, _ = key_paths(fleet)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    loaded = paramiko.Ed25519Key.from_private_key_file(str(private))
    assert public.read_text().split()[1] == loaded.get_base64()
    assert public.read_text().split()[2].startswith("pifleet-team1@")


def test_fleet_key_is_kept_and_its_public_half_restored(fleet: Fleet) -> None:
    public = ensure_key(fleet)
    first = public.read_text()
    public.unlink()
    assert ensure_key(fleet).read_text().split()[:2] == first.split()[:2]


def test_first_contact_pins_then_same_key_matches(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    key = paramiko.ECDSAKey.generate()
    assert hostkeys.pin("fregate", "10.0.0.3", 22, known, key).new
    again = hostkeys.pin("fregate", "10.0.0.3", 22, known, key)
    assert not again.new and again.fingerprint.startswith("SHA256:")
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    assert known.read_text().startswith("10.0.0.3 ecdsa-sha2-nistp256 ")


def test_changed_key_is_refused_with_node_and_both_fingerprints(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    old, new = paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()
    hostkeys.pin("fregate", "10.0.0.3", 2222, known, old)
    before = known.read_text()
    with pytest.raises(hostkeys.HostKeyChanged) as caught:
        hostkeys.pin("fregate", "10.0.0.3", 2222, known, new)
    message = str(caught.value)
    assert "fregate" in message and "[10.0.0.3]:2222" in message
    assert hostkeys.fingerprint(old) in message and hostkeys.fingerprint(new) in message
    assert known.read_text() == before


def test_fingerprint_matches_openssh_form() -> None:
    key = paramiko.ECDSAKey.generate()
    printed = hostkeys.fingerprint(key)
    assert printed.startswith("SHA256:") and not printed.endswith("=") and len(printed) == 50


def test_secrets_file_is_0600_and_values_round_trip(fleet: Fleet) -> None:
    set_secret(fleet, "laperouse", "password", "s3cret")
    set_secret(fleet, "fregate", "password", "other")
    assert get_secret(fleet, "laperouse", "password") == "s3cret"
    assert get_secret(fleet, "nobody", "password") is None
    assert stat.S_IMODE(fleet.secrets_path.stat().st_mode) == 0o600
