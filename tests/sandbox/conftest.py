"""The `sandbox` fixture: three virtual Pis shared by a test module, removed at its end.

Needs root (network namespaces, systemd-nspawn); skipped otherwise.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import paramiko
import pytest

from pifleet.events import Emitter
from pifleet.sandbox import Sandbox, down, up
from pifleet.sandbox.naming import Names
from pifleet.sandbox.registry import run_dir

SANDBOX_NODES = 3


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("sandbox tests need root (network namespaces, systemd-nspawn)")


@contextmanager
def running_sandbox(directory: Path, nodes: int) -> Iterator[Sandbox]:
    """A sandbox of `nodes` nodes in `directory`; `down` after, then nothing of it may be left."""
    _require_root()
    inodes: set[int] = set()
    try:
        info = up(directory, nodes, "native", Emitter())
        inodes = netns_inodes(info)
        yield info
    finally:
        down(directory, Emitter())
    left = host_leftovers(directory, Names.for_dir(directory).ident, inodes)
    assert not left, f"sandbox down left: {left}"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A running 3-node sandbox in a fresh folder; torn down after the module, even on error."""
    with running_sandbox(tmp_path_factory.mktemp("sandbox"), SANDBOX_NODES) as info:
        yield info


SSHRun = Callable[[str, str], tuple[int, str, str]]


@pytest.fixture(scope="module")
def node_ssh(sandbox: Sandbox) -> Iterator[SSHRun]:
    """`run(address, command) -> (exit status, stdout, stderr)` as the sandbox user, by password.

    Opens a fresh connection per call, so it also works across a node's reboot.
    """
    def run(address: str, command: str) -> tuple[int, str, str]:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # throwaway test nodes
        client.connect(address, username=sandbox.ssh_user, password=sandbox.ssh_password,
                       look_for_keys=False, allow_agent=False, timeout=10)
        try:
            _, stdout, stderr = client.exec_command(command, timeout=120)
            out, err = stdout.read().decode(), stderr.read().decode()
            return stdout.channel.recv_exit_status(), out, err
        finally:
            client.close()

    yield run


def netns_inodes(sandbox: Sandbox) -> set[int]:
    """The network namespaces of the sandbox's nodes, as inode numbers."""
    return {os.stat(f"/run/netns/{n.netns}").st_ino for n in sandbox.nodes}


def host_leftovers(directory: Path, ident: str, inodes: set[int] = frozenset()) -> list[str]:
    """Everything of the sandbox `ident` (in `directory`) still present on this machine.

    `inodes` (from `netns_inodes`, taken while it ran) also finds node processes that would
    outlive their namespace's name.
    """
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"netns {line.split()[0]}" for line in netns.splitlines()
              if line.startswith(f"pifleet-{ident}-")]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines()
              if ident in line.split(":")[1]]
    mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True,
                            text=True).stdout
    found += [f"mount {m}" for m in mounts.splitlines() if m.startswith(str(directory))]
    for tool in ("iptables", "ip6tables"):  # every chain: FORWARD, INPUT, any other
        rules = subprocess.run([tool, "-w", "-S"], capture_output=True, text=True).stdout
        found += [f"rule {r}" for r in rules.splitlines() if f"pifleet-sandbox-{ident}" in r]
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if argv and (str(directory) in argv or ("pifleet" in argv and ident in argv)):
            # the sandbox's own processes, and host services named after it (its apt proxy)
            found.append(f"process {pid} {argv.replace(chr(0), ' ')[:120]}")
        try:
            in_node = os.stat(f"/proc/{pid}/ns/net").st_ino in inodes
        except OSError:
            continue
        if in_node and argv:  # zombies (no argv) wait for reaping and hold nothing
            found.append(f"node process {pid} {argv.replace(chr(0), ' ')[:120]}")
    for hierarchy in ("systemd", "unified"):
        groups = Path("/sys/fs/cgroup") / hierarchy / "pifleet-sandbox"
        found += [f"cgroup {g}" for g in groups.glob(f"pifleet-{ident}-*")]
    for path in [directory / name for name in (".sandbox", "fleet.yaml", "packages", ".pifleet")]:
        if path.exists():
            found.append(f"file {path}")
    found += [f"file {p}" for p in run_dir().rglob(f"*{ident}*")]  # registry, apt proxy
    return found


@pytest.fixture(scope="session")
def sandbox_leftovers() -> Callable[..., list[str]]:
    """`host_leftovers` as a fixture, for tests that make and remove sandboxes themselves."""
    return host_leftovers


@pytest.fixture(scope="session")
def sandbox_netns_inodes() -> Callable[[Sandbox], set[int]]:
    """`netns_inodes` as a fixture."""
    return netns_inodes


@pytest.fixture(scope="session")
def sandbox_factory() -> Callable[[Path, int], AbstractContextManager[Sandbox]]:
    """`running_sandbox` as a fixture, for modules that need sandboxes of their own."""
    return running_sandbox
