"""The sandbox itself against the real thing: nspawn nodes, bridge, apt proxy, reboot, down."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import paramiko
import pytest

from pifleet.errors import BadInput
from pifleet.events import Emitter, Status
from pifleet.fleet import load_fleet
from pifleet.sandbox import Sandbox, down, list_sandboxes, up
from pifleet.sandbox.hostservices import APT_PROXY_PORT, port_open

SSHRun = Callable[[str, str], tuple[int, str, str]]

pytestmark = pytest.mark.sandbox


def host_key_fingerprint(address: str) -> str:
    """SHA-256 of the node's ed25519 host key, read from an SSH handshake."""
    transport = paramiko.Transport((address, 22))
    try:
        transport.get_security_options().key_types = ["ssh-ed25519"]
        transport.start_client(timeout=10)
        return hashlib.sha256(transport.get_remote_server_key().asbytes()).hexdigest()
    finally:
        transport.close()


def test_fleet_file_describes_the_nodes(sandbox: Sandbox) -> None:
    fleet = load_fleet(sandbox.fleet_path)
    assert [n.name for n in fleet.nodes] == sandbox.node_names
    assert [n.role for n in fleet.nodes] == ["control-plane", "worker", "worker"]
    assert [n.address for n in fleet.nodes] == [n.address for n in sandbox.nodes]
    assert fleet.ssh.user == "pirate" and fleet.ssh.password == "hypriot"
    # trust's files stay at their defaults, under the sandbox folder
    assert fleet.resolve(fleet.ssh.private_key) == sandbox.directory / ".pifleet/id_ed25519"
    assert fleet.kubernetes.repository_url.startswith(sandbox.packages_url + "/")


def test_nodes_are_distinct_machines(sandbox: Sandbox, node_ssh: SSHRun) -> None:
    seen: dict[str, set[str]] = {"hostname": set(), "machine-id": set(), "host key": set()}
    for node in sandbox.nodes:
        status, out, _ = node_ssh(node.address, "hostname; cat /etc/hostname /etc/machine-id")
        assert status == 0
        hostname, etc_hostname, machine_id = out.split()
        assert hostname == etc_hostname == node.name
        seen["hostname"].add(hostname)
        seen["machine-id"].add(machine_id)
        seen["host key"].add(host_key_fingerprint(node.address))
        _, hosts, _ = node_ssh(node.address, "getent hosts " + node.name)
        assert node.name in hosts  # /etc/hosts names the node, as on a flashed Pi
    for what, values in seen.items():
        assert len(values) == len(sandbox.nodes), f"shared {what}: {values}"
    # Each node's processes live in a control group of its own (seen from the host: inside,
    # a cgroup namespace hides the path), so no two nodes' systemd share a tree of services.
    for node in sandbox.nodes:
        pids = subprocess.run(["ip", "netns", "pids", node.netns], capture_output=True,
                              text=True, check=True).stdout.split()
        assert pids
        for pid in pids:
            try:
                groups = Path(f"/proc/{pid}/cgroup").read_text()
            except FileNotFoundError:  # a short-lived process that just ended
                continue
            assert f":/pifleet-sandbox/{node.netns}/" in groups, groups


def test_login_is_pirate_with_sudo_that_asks_for_the_password(sandbox: Sandbox,
                                                               node_ssh: SSHRun) -> None:
    address = sandbox.nodes[1].address
    status, out, _ = node_ssh(address, "id -un; id -Gn")
    assert status == 0 and out.split()[0] == "pirate" and "sudo" in out.split()[1:]
    status, _, err = node_ssh(address, "sudo -n true")
    assert status != 0 and "password is required" in err
    status, out, _ = node_ssh(address, "echo hypriot | sudo -S -p '' id -u")
    assert status == 0 and out.strip() == "0"


def test_looks_like_a_pi(sandbox: Sandbox, node_ssh: SSHRun) -> None:
    address = sandbox.nodes[0].address
    status, out, _ = node_ssh(address, "cat /boot/firmware/cmdline.txt")
    assert status == 0 and out.count("\n") == 1 and "root=" in out
    status, out, _ = node_ssh(address, "test -s /boot/firmware/config.txt && vcgencmd "
                                       "measure_temp && vcgencmd get_throttled")
    assert status == 0 and out.splitlines() == ["temp=47.2'C", "throttled=0x0"]
    # A test can make the node report under-voltage through the stand-in's state file.
    status, _, _ = node_ssh(address, "echo hypriot | sudo -S -p '' sh -c "
                                     "'echo throttled=0x50005 >> /var/lib/sandbox-vcgencmd/state'")
    assert status == 0
    _, out, _ = node_ssh(address, "vcgencmd get_throttled")
    assert out.strip() == "throttled=0x50005"


def test_network_default_route_and_no_way_out(sandbox: Sandbox, node_ssh: SSHRun) -> None:
    status, out, _ = node_ssh(sandbox.nodes[2].address, "ip route show default")
    assert status == 0 and f"via {sandbox.bridge_address}" in out
    rules = subprocess.run(["iptables", "-w", "-S", "FORWARD"], capture_output=True,
                           text=True, check=True).stdout
    assert f"-A FORWARD -i {sandbox.bridge} ! -o {sandbox.bridge}" in rules
    # Neighbours answer directly across the bridge.
    status, out, _ = node_ssh(sandbox.nodes[2].address,
                              f"timeout 5 bash -c 'exec 3<>/dev/tcp/{sandbox.nodes[0].address}"
                              "/22; head -c 4 <&3'")
    assert status == 0 and out == "SSH-"


def test_apt_goes_through_the_proxy_and_packages_direct(sandbox: Sandbox,
                                                        node_ssh: SSHRun) -> None:
    (sandbox.packages_dir / "probe.txt").write_text("from the package server\n")
    address = sandbox.nodes[0].address
    _, dump, _ = node_ssh(address, "apt-config dump | grep -i proxy")
    assert f'Acquire::http::Proxy "{sandbox.apt_proxy_url}"' in dump
    assert f'Acquire::http::Proxy::{sandbox.bridge_address} "DIRECT"' in dump
    status, out, _ = node_ssh(address, f"curl -sf {sandbox.packages_url}/probe.txt")
    assert status == 0 and out == "from the package server\n"
    assert port_open(sandbox.bridge_address, APT_PROXY_PORT)  # on the bridge address
    status, out, err = node_ssh(address, "echo hypriot | sudo -S -p '' apt-get update -q")
    assert status == 0, out + err


def test_up_again_keeps_the_running_sandbox(sandbox: Sandbox) -> None:
    pids = {n: (sandbox.directory / ".sandbox/nodes" / n / "supervisor.pid").read_text()
            for n in sandbox.node_names}
    events: list = []
    again = up(sandbox.directory, len(sandbox.nodes), "native", Emitter(events.append))
    assert again == sandbox
    boots = [e for e in events if e.step == "boot"]
    assert boots and all(e.status is Status.SKIPPED for e in boots)
    assert pids == {n: (sandbox.directory / ".sandbox/nodes" / n / "supervisor.pid").read_text()
                    for n in sandbox.node_names}
    listed = [s for s in list_sandboxes() if s.directory == sandbox.directory]
    assert len(listed) == 1 and listed[0].state == "running"


def test_up_restarts_a_crashed_node_as_itself(sandbox: Sandbox, node_ssh: SSHRun) -> None:
    """A power cut of one node (supervisor and nspawn killed): `up` cleans what the crash left
    and boots the same node again, with the same host key and machine-id."""
    node = sandbox.nodes[2]
    key_before = host_key_fingerprint(node.address)
    _, id_before, _ = node_ssh(node.address, "cat /etc/machine-id")
    status = json.loads((sandbox.directory / ".sandbox/nodes" / node.name /
                         "status.json").read_text())
    for pid in (status["pid"], status["nspawn"]):
        os.kill(pid, signal.SIGKILL)
    events: list = []
    again = up(sandbox.directory, len(sandbox.nodes), "native", Emitter(events.append))
    assert again == sandbox
    leftovers = [e for e in events if e.step == "leftovers" and e.node == node.name]
    assert leftovers and "crashed run" in leftovers[0].message
    restarted = [e.node for e in events if e.step == "boot" and e.status is Status.OK]
    assert restarted == [node.name]
    assert host_key_fingerprint(node.address) == key_before
    _, id_after, _ = node_ssh(node.address, "cat /etc/machine-id")
    assert id_after == id_before


def test_two_sandboxes_coexist(sandbox: Sandbox, node_ssh: SSHRun, tmp_path: Path) -> None:
    """A second sandbox gets its own names, /24 and apt proxy; the first one's proxy outlives
    the second one's `down`."""
    other_dir = tmp_path / "second"
    try:
        other = up(other_dir, 1, "native", Emitter())
        assert other.bridge != sandbox.bridge and other.network != sandbox.network
        assert other.nodes[0].netns != sandbox.nodes[0].netns
        for address in (sandbox.bridge_address, other.bridge_address):
            assert port_open(address, APT_PROXY_PORT)
        # No path from one sandbox into the other.
        status, _, _ = node_ssh(other.nodes[0].address,
                                f"timeout 3 bash -c 'exec 3<>/dev/tcp/{sandbox.nodes[0].address}"
                                "/22'")
        assert status != 0
    finally:
        down(other_dir, Emitter())
    assert port_open(sandbox.bridge_address, APT_PROXY_PORT)
    status, out, _ = node_ssh(sandbox.nodes[0].address, "hostname")
    assert status == 0 and out.strip() == sandbox.nodes[0].name


def test_reboot_gives_a_new_boot(sandbox: Sandbox, node_ssh: SSHRun) -> None:
    node = sandbox.nodes[1]
    _, before, _ = node_ssh(node.address, "cat /proc/sys/kernel/random/boot_id")
    node_ssh(node.address, "echo hypriot | sudo -S -p '' systemctl reboot")
    deadline = time.monotonic() + 120
    after = before
    while time.monotonic() < deadline:
        time.sleep(1)
        try:
            status, after, _ = node_ssh(node.address, "cat /proc/sys/kernel/random/boot_id")
        except (OSError, paramiko.SSHException):
            continue
        if status == 0 and after != before:
            break
    assert after.strip() and after != before
    _, name, _ = node_ssh(node.address, "hostname")
    assert name.strip() == node.name
    state = json.loads((sandbox.directory / ".sandbox/nodes" / node.name /
                        "status.json").read_text())
    assert state["state"] == "running" and state["boots"] >= 2


def test_down_after_a_crash_leaves_nothing(
        tmp_path: Path, sandbox_leftovers: Callable[..., list[str]],
        sandbox_netns_inodes: Callable[[Sandbox], set[int]]) -> None:
    """Its own one-node sandbox: crash its supervisor and nspawn, then `down` everything."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    directory = tmp_path / "crashed"
    try:
        info = up(directory, 1, "native", Emitter())
        inodes = sandbox_netns_inodes(info)
        status = json.loads((directory / ".sandbox/nodes" / info.nodes[0].name /
                             "status.json").read_text())
        for pid in (status["pid"], status["nspawn"]):  # a power cut: no clean shutdown
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        assert sandbox_leftovers(directory, info.ident, inodes)  # the node's processes live on
    finally:
        down(directory, Emitter())
    assert sandbox_leftovers(directory, info.ident, inodes) == []
    assert not directory.exists()
    # Again: nothing is there any more, which a mistyped folder must not hide.
    with pytest.raises(BadInput, match="no sandbox here"):
        down(directory, Emitter())
