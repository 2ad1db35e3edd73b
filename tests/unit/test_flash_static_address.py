"""Static addresses: one address fits one card; `--node` takes fleet addresses only on request."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest

from pifleet.errors import BadInput
from pifleet.flash.cards import Common, for_targets, static_address
from pifleet.fleet.load import parse_fleet

FLEET = """
name: lab
nodes:
  - name: brig
    address: 192.168.5.11
    role: control-plane
  - name: sloop
    address: 192.168.5.12
  - name: ketch
    address: ketch.local
"""


def _common(static_ip: str | None, gateway: str | None = None,
            dns: tuple[str, ...] = ()) -> Common:
    network, scheme = static_address(static_ip, gateway, list(dns))
    return Common(network=network, fleet_addressing=scheme)


def test_one_address_for_several_cards_is_refused() -> None:
    with pytest.raises(BadInput, match=r"--static-ip 192\.168\.5\.20/24 would give all 2 cards"):
        for_targets(2, _common("192.168.5.20/24"), ["a", "b"], [], None, None)
    fleet = parse_fleet(FLEET)
    with pytest.raises(BadInput, match="--static-ip"):
        for_targets(2, _common("192.168.5.11/24"), [], ["brig", "sloop"], fleet, {})


def test_one_address_for_one_card_is_kept() -> None:
    (boot,) = for_targets(1, _common("192.168.5.20/24", "192.168.5.1"), ["a"], [], None,
                          None)
    assert boot is not None and boot.network is not None
    assert boot.network.address == ipaddress.IPv4Interface("192.168.5.20/24")


def test_nodes_keep_dhcp_unless_static_addressing_is_asked_for() -> None:
    fleet = parse_fleet(FLEET)
    boots = for_targets(2, Common(), [], ["brig", "sloop"], fleet, {})
    assert [b.network for b in boots if b] == [None, None]


def test_prefix_alone_takes_each_nodes_fleet_address() -> None:
    fleet = parse_fleet(FLEET)
    boots = for_targets(2, _common("/24", "192.168.5.1", ("192.168.5.1",)), [],
                        ["brig", "sloop"], fleet, {})
    nets = [b.network for b in boots if b]
    assert [str(n.address) for n in nets if n] == ["192.168.5.11/24", "192.168.5.12/24"]
    assert all(n and str(n.gateway) == "192.168.5.1" and n.dns for n in nets)


def test_prefix_alone_needs_nodes_with_ip_addresses() -> None:
    fleet = parse_fleet(FLEET)
    with pytest.raises(BadInput, match="needs --node"):
        for_targets(2, _common("/24"), ["a", "b"], [], None, None)
    with pytest.raises(BadInput, match=r"ketch\.local is not an IPv4 address"):
        for_targets(1, _common("/24"), [], ["ketch"], fleet, {})
    with pytest.raises(BadInput, match=r"gateway 10\.0\.0\.1 is not in"):
        for_targets(1, _common("/24", "10.0.0.1"), [], ["brig"], fleet, {})


def test_a_node_address_that_disagrees_with_the_fleet_is_refused() -> None:
    fleet = parse_fleet(FLEET)
    with pytest.raises(BadInput, match=r"reaches node brig at 192\.168\.5\.11"):
        for_targets(1, _common("192.168.5.99/24"), [], ["brig"], fleet, {})
    (boot,) = for_targets(1, _common("192.168.5.11/24"), [], ["brig"], fleet, {})
    assert boot is not None and boot.network is not None


@pytest.mark.parametrize("bad", ["/0", "/33", "/x", "/"])
def test_bad_prefixes(bad: str) -> None:
    with pytest.raises(BadInput, match="prefix"):
        static_address(bad, None, [])


def test_gateway_and_dns_need_static_ip() -> None:
    with pytest.raises(BadInput, match="go with --static-ip"):
        static_address(None, "192.168.5.1", [])
    with pytest.raises(BadInput, match="static address"):
        static_address("/24", "not-an-ip", [])


def test_command_line_refuses_one_address_for_two_cards(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pifleet", "flash", "no-such.img",
                           str(tmp_path / "a.img"), str(tmp_path / "b.img"), "--hostname", "a",
                           "--hostname", "b", "--static-ip", "192.168.5.20/24"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
                          check=False)
    assert proc.returncode == 2 and "--static-ip" in proc.stderr
    assert not list(tmp_path.iterdir())
