"""The sandbox address plan and host-side names."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from pifleet.errors import Failed
from pifleet.sandbox.addresses import MAX_NODES, RESERVED, SLOTS, Plan, choose_slot
from pifleet.sandbox.naming import IFNAMSIZ, Names, check_link_name, sandbox_id


def test_plan_addresses() -> None:
    plan = Plan(7)
    assert str(plan.network) == "10.213.7.0/24"
    assert str(plan.bridge) == "10.213.7.1"
    assert [str(plan.node(i)) for i in range(3)] == ["10.213.7.10", "10.213.7.11",
                                                     "10.213.7.12"]
    assert plan.node(MAX_NODES - 1) in plan.network
    with pytest.raises(ValueError):
        plan.node(MAX_NODES)
    with pytest.raises(ValueError):
        Plan(0)


def test_no_slot_overlaps_pod_or_service_cidr() -> None:
    for slot in SLOTS:
        assert not any(Plan(slot).network.overlaps(r) for r in RESERVED)


def test_macs_are_unique_and_look_like_a_pi() -> None:
    macs = {Plan(s).mac(i) for s in (1, 2) for i in range(MAX_NODES)}
    assert len(macs) == 2 * MAX_NODES
    assert all(m.startswith("dc:a6:32:") and len(m) == 17 for m in macs)


def test_choose_slot_is_stable_and_skips_busy_ones() -> None:
    first = choose_slot("abcdef", [])
    assert choose_slot("abcdef", []) == first
    second = choose_slot("abcdef", [], taken_slots=[first])
    assert second != first
    routed = [ipaddress.IPv4Network(f"10.213.{first}.0/24")]
    assert choose_slot("abcdef", routed) != first
    # A host route over the whole block leaves nothing.
    with pytest.raises(Failed):
        choose_slot("abcdef", [ipaddress.IPv4Network("10.213.0.0/16")])


def test_names_derive_from_the_folder(tmp_path: Path) -> None:
    a, b = Names.for_dir(tmp_path / "a"), Names.for_dir(tmp_path / "b")
    assert a != b and a == Names.for_dir(tmp_path / "a")
    assert a.ident == sandbox_id(tmp_path / "a") and len(a.ident) == 6
    assert a.netns(3) == f"pifleet-{a.ident}-03"
    assert a.netns(3).startswith(a.netns_prefix)


@pytest.mark.parametrize("index", [0, 9, 99, MAX_NODES - 1])
def test_link_names_fit_the_kernel_limit(index: int) -> None:
    names = Names("0f1e2d")
    for link in (names.bridge, names.veth_host(index), names.veth_peer(index)):
        assert check_link_name(link) == link and len(link) <= IFNAMSIZ
    assert names.veth_host(index) != names.veth_peer(index)


def test_check_link_name_rejects_long_names() -> None:
    with pytest.raises(ValueError):
        check_link_name("a" * (IFNAMSIZ + 1))
