"""Pure parts of the sandbox: iptables rule parsing, fleet file, mount checks, processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pifleet.fleet import load_fleet
from pifleet.sandbox import fleetfile
from pifleet.sandbox.addresses import Plan
from pifleet.sandbox.fsutil import mounts_under, remove_tree, write_file
from pifleet.sandbox.hostservices import APT_PROXY_PORT, PACKAGES_PORT
from pifleet.sandbox.naming import Names
from pifleet.sandbox.network import forward_rules, input_rules, tagged_rules
from pifleet.sandbox.processes import alive, find, spawn, stop
from pifleet.sandbox.state import Record

LISTING = """\
-P FORWARD ACCEPT
-A FORWARD ! -i pfb-0a0b0c -o pfb-0a0b0c -m comment --comment pifleet-sandbox-0a0b0c -j DROP
-A FORWARD -i pfb-0a0b0c ! -o pfb-0a0b0c -m comment --comment pifleet-sandbox-0a0b0c -j DROP
-A FORWARD -i pfb-999999 ! -o pfb-999999 -m comment --comment pifleet-sandbox-999999 -j DROP
-A FORWARD -i docker0 -j ACCEPT
"""


def test_tagged_rules_finds_only_this_sandbox() -> None:
    names = Names("0a0b0c")
    found = tagged_rules(LISTING, names.rule_tag)
    # As `iptables -S` prints them (it moves `!` first), ready for `iptables -D FORWARD ...`.
    assert found == [
        ["!", "-i", "pfb-0a0b0c", "-o", "pfb-0a0b0c", *forward_rules(names)[0][5:]],
        forward_rules(names)[0],
    ]


def test_forward_rules_drop_both_ways_but_not_within_the_bridge() -> None:
    rules = forward_rules(Names("0a0b0c"))
    assert rules[0][:5] == ["-i", "pfb-0a0b0c", "!", "-o", "pfb-0a0b0c"]
    assert rules[1][:5] == ["-o", "pfb-0a0b0c", "!", "-i", "pfb-0a0b0c"]
    assert all(rule[-2:] == ["-j", "DROP"] for rule in rules)


def test_input_rules_let_nodes_open_only_their_own_services() -> None:
    names = Names("0a0b0c")
    replies, services, rest = input_rules(names, Plan(9))
    assert all(rule[:2] == ["-i", "pfb-0a0b0c"] and names.rule_tag in rule
               for rule in (replies, services, rest))
    assert "RELATED,ESTABLISHED" in replies and replies[-1] == "ACCEPT"
    assert services[2:4] == ["-d", "10.213.9.1/32"] and services[-1] == "ACCEPT"
    assert f"{APT_PROXY_PORT},{PACKAGES_PORT}" in services and "tcp" in services
    assert rest == ["-i", "pfb-0a0b0c", "-m", "comment", "--comment", names.rule_tag, "-j", "DROP"]


def test_fleet_file_is_valid_and_marks_itself(tmp_path: Path) -> None:
    record = Record(directory=str(tmp_path), ident="0a0b0c", slot=9, arch="amd64",
                    base="/base", nodes=["laperouse", "black-pearl", "fregate"])
    sandbox = record.info()
    fleetfile.write(sandbox, "http://mirror.example/debian")
    fleet = load_fleet(sandbox.fleet_path)
    assert [n.role for n in fleet.nodes] == ["control-plane", "worker", "worker"]
    assert fleet.nodes[0].address == "10.213.9.10"
    assert fleet.ssh.password == "hypriot" and fleet.ssh.user == "pirate"
    assert fleet.kubernetes.repository_url == "http://10.213.9.1:8080/core:/stable:/v1.34/deb/"
    assert fleet.apt.proxy == f"http://10.213.9.1:{APT_PROXY_PORT}"
    assert fleetfile.is_ours(sandbox.fleet_path)
    (tmp_path / "other.yaml").write_text("name: mine\n")
    assert not fleetfile.is_ours(tmp_path / "other.yaml")


def test_mounts_under_reads_mountinfo(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 0:21 / /proc rw - proc proc rw\n"
        f"90 1 0:50 / {tmp_path}/root rw - overlay overlay rw\n"
        f"91 90 0:5 / {tmp_path}/root/dev rw - devtmpfs udev rw\n"
        f"92 1 0:51 / {tmp_path}/rootless rw - tmpfs tmpfs rw\n"
        f"93 1 0:52 / {tmp_path}/with\\040space rw - tmpfs tmpfs rw\n")
    assert mounts_under(tmp_path / "root", info) == [tmp_path / "root/dev", tmp_path / "root"]
    assert mounts_under(tmp_path / "with space", info) == [tmp_path / "with space"]


def test_remove_tree_and_write_file(tmp_path: Path) -> None:
    write_file(tmp_path / "a/b/key", "secret\n", 0o600)
    assert (tmp_path / "a/b/key").stat().st_mode & 0o777 == 0o600
    remove_tree(tmp_path / "a")
    assert not (tmp_path / "a").exists()
    remove_tree(tmp_path / "a")  # nothing there: nothing to do


def test_spawned_daemon_is_found_by_marker_and_stopped(tmp_path: Path) -> None:
    marker = str(tmp_path / "marker-for-this-test")
    pid = spawn([sys.executable, "-c", "import time, sys; time.sleep(60)", marker],
                tmp_path / "log", pid_file=tmp_path / "pid")
    try:
        deadline = time.monotonic() + 5
        while not alive(pid, marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive(pid, marker) and not alive(pid, "some-other-marker")
        assert find(marker) == [pid]
        assert (tmp_path / "pid").read_text().strip() == str(pid)
    finally:
        stop([pid], timeout=5)
    assert not alive(pid, marker) and find(marker) == []


def test_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(0.3)
    assert stop([proc.pid], timeout=0.5) == [proc.pid]
    assert not Path(f"/proc/{proc.pid}").exists()  # killed and reaped by stop()


@pytest.mark.parametrize("slot", [1, 254])
def test_record_info_addresses(tmp_path: Path, slot: int) -> None:
    info = Record(str(tmp_path), "0a0b0c", slot, "amd64", "/b", ["a", "b"]).info()
    assert info.packages_url == f"http://10.213.{slot}.1:8080"
    assert [n.netns for n in info.nodes] == ["pifleet-0a0b0c-00", "pifleet-0a0b0c-01"]
    assert info.node("b").role == "worker"


def test_cgroup_hierarchies_systemd_tracks() -> None:
    from pifleet.sandbox.cgroups import tracking_hierarchies

    mountinfo = (
        "30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
        "31 25 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "38 25 0:34 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
        "39 25 0:35 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")
    assert tracking_hierarchies(mountinfo) == [Path("/sys/fs/cgroup/systemd"),
                                               Path("/sys/fs/cgroup/unified")]
    pure_v2 = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    assert tracking_hierarchies(pure_v2) == [Path("/sys/fs/cgroup")]
