"""`up`, `down` and `list` of sandboxes: the sequence of host operations, each reported as an
event, each safe to repeat.

The commands this automates, as first made to work by hand on this machine (root):

    ip link add pfb-ID type bridge; ip addr add 10.213.N.1/24 dev pfb-ID; ip link set pfb-ID up
    ip netns add pifleet-ID-00
    ip link add pfvIDn0 type veth peer name pfvIDp0; ip link set pfvIDn0 master pfb-ID up
    ip link set pfvIDp0 netns pifleet-ID-00
    ip -n pifleet-ID-00 link set pfvIDp0 name eth0; ip -n ... addr add 10.213.N.10/24 dev eth0
    ip -n ... link set eth0 up; ip -n ... link set lo up; ip -n ... route add default via ...1
    setsid unshare --mount --propagation private sh -c '
        mount -t overlay overlay -o lowerdir=BASE,upperdir=UP,workdir=WORK ROOT
        SYSTEMD_NSPAWN_API_VFS_WRITABLE=network exec systemd-nspawn -D ROOT --boot \\
          --network-namespace-path=/run/netns/pifleet-ID-00 --capability=CAP_NET_ADMIN \\
          --register=no --keep-unit'
    # `systemctl reboot` inside: nspawn exits 133 and the supervisor boots it again.
"""

from __future__ import annotations

import ipaddress
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pifleet.errors import BadInput, Failed
from pifleet.events import Emitter, Status
from pifleet.fleet.names import suggest_names
from pifleet.sandbox import (
    cgroups,
    emulation,
    fleetfile,
    hostcheck,
    hostlimits,
    hostservices,
    network,
    nodefiles,
    processes,
    registry,
    rootfs,
    sources,
)
from pifleet.sandbox.addresses import MAX_NODES, Plan, choose_slot
from pifleet.sandbox.commands import run
from pifleet.sandbox.fsutil import remove_tree
from pifleet.sandbox.naming import Names
from pifleet.sandbox.state import (
    FLEET_FILE,
    PACKAGES_DIR,
    Record,
    Sandbox,
    load,
    node_dir,
    save,
    state_dir,
)
from pifleet.sandbox.supervisor import NodeRun

PHASE = "sandbox"
SSH_PORT = 22
NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")
# The fleet's key and known_hosts (made by `trust`) belong to nodes that `down` destroys.
FLEET_STATE = ".pifleet"


# --- helpers ---------------------------------------------------------------------------------

def _supervisor_config(directory: Path, name: str) -> Path:
    return node_dir(directory, name) / "run.json"


def _supervisor_pid(directory: Path, name: str) -> int | None:
    """The node's supervisor pid if it is alive."""
    pid = processes.read_pid(node_dir(directory, name) / "supervisor.pid")
    marker = str(_supervisor_config(directory, name))
    return pid if processes.alive(pid, marker) else None


def ssh_banner(address: str, timeout: float = 2.0) -> bool:
    """True when an SSH server greets on address:22."""
    try:
        with socket.create_connection((address, SSH_PORT), timeout=timeout) as conn:
            conn.settimeout(timeout)
            return conn.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def wait_ssh(address: str, timeout: float, running: Callable[[], bool] = lambda: True) -> None:
    """Wait for sshd on `address`; Failed after `timeout` s, or at once when `running()` fails."""
    deadline = time.monotonic() + timeout
    while not ssh_banner(address):
        if not running():
            raise Failed(f"the node powered off before sshd answered on {address}")
        if time.monotonic() > deadline:
            raise Failed(f"sshd on {address} did not answer within {timeout:.0f} s")
        time.sleep(0.5)


def _console_tail(directory: Path, name: str, lines: int = 3) -> str:
    """The last lines a node printed on its console (for error messages)."""
    try:
        text = (node_dir(directory, name) / "console.log").read_text(errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " / ".join(kept)


def _live_bridge_addresses(exclude: str) -> list[str]:
    """Bridge addresses of other registered sandboxes whose bridge exists."""
    present = set(network.link_names())
    return [str(Plan(e.slot).bridge) for e in registry.entries()
            if e.ident != exclude and Names(e.ident).bridge in present]


def _nodes_on_machine() -> int:
    """How many nodes all registered sandboxes have together."""
    total = 0
    for entry in registry.entries():
        record = load(Path(entry.directory))
        total += len(record.nodes) if record else 0
    return total


def _prune_registry(emit: Emitter) -> None:
    """Forget sandboxes with neither a state file nor a bridge (their folder was deleted after
    a crash and the machine rebooted, say): they hold an address block for nothing."""
    bridges = set(network.sandbox_bridges())
    for entry in registry.entries():
        if load(Path(entry.directory)) is None and Names(entry.ident).bridge not in bridges:
            registry.unregister(entry.ident)
            emit.emit(None, PHASE, "leftovers", Status.INFO, changed=True,
                      message=f"forgot the vanished sandbox of {entry.directory}")


def _choose_slot(names: Names, record: Record | None) -> int:
    """Keep the recorded slot; otherwise the first free one (machine lock held)."""
    others = {e.slot for e in registry.entries() if e.ident != names.ident}
    own = Plan(record.slot).network if record else None
    busy = []
    for dst in network.routed_networks():
        try:
            net = ipaddress.IPv4Network(dst, strict=False)
        except ValueError:
            continue
        if net != own:  # our own bridge's route does not count against us
            busy.append(net)
    if record and own and record.slot not in others and not any(own.overlaps(b) for b in busy):
        return record.slot
    return choose_slot(names.ident, busy, others)


# --- up --------------------------------------------------------------------------------------

def up(directory: Path, count: int, arch: str = "native", emit: Emitter | None = None) -> Sandbox:
    """Bring up (or converge) the sandbox in `directory` with `count` nodes; wait for SSH.

    A sandbox already running there is kept as it is; missing or crashed parts are rebuilt,
    extra nodes are added. Raises BadInput before touching anything when the request cannot
    be met, Failed when a node does not come up.
    """
    emit = emit or Emitter()
    hostcheck.require_root("up")
    if not 1 <= count <= MAX_NODES:
        raise BadInput(f"--nodes {count}: a sandbox holds 1 to {MAX_NODES} nodes")
    directory = Path(directory).absolute()
    deb_arch = rootfs.resolve_arch(arch)
    record = load(directory)
    if record and record.arch != deb_arch:
        raise BadInput(f"the sandbox in {directory} runs {record.arch} nodes, not {deb_arch}; "
                       f"`pifleet sandbox down --dir {directory}` first")
    if record and count < len(record.nodes):
        raise BadInput(f"the sandbox in {directory} has {len(record.nodes)} nodes; up does not "
                       f"remove nodes (`pifleet sandbox down --dir {directory}` first)")
    fleet_path = directory / FLEET_FILE
    if record is None and fleet_path.exists() and not fleetfile.is_ours(fleet_path):
        raise BadInput(f"{fleet_path} exists and was not written by `sandbox up`: "
                       "choose another --dir")
    try:
        mirror = sources.host_mirror()
    except LookupError as exc:
        raise BadInput(str(exc)) from exc
    hostcheck.ensure_sbin_on_path()
    with emit.step(None, PHASE, "host packages") as step:
        missing = hostcheck.missing_packages()
        if deb_arch != rootfs.native_arch():
            missing += hostcheck.missing_debs(emulation.PACKAGES)
        hostcheck.install_packages(missing)
        step.changed = bool(missing)
        step.message = f"installed {' '.join(missing)}" if missing else "present"
    if deb_arch != rootfs.native_arch():
        with emit.step(None, PHASE, f"{deb_arch} emulation") as step:
            with registry.machine_lock():
                done = emulation.enable(deb_arch)
            step.changed = bool(done)
            step.message = "; ".join(done) or "ready"

    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    state_dir(directory).mkdir(exist_ok=True)
    with registry.dir_lock(state_dir(directory)):
        return _up_locked(directory, count, deb_arch, mirror, created, emit)


def _up_locked(directory: Path, count: int, arch: str, mirror: sources.Mirror, created: bool,
               emit: Emitter) -> Sandbox:
    record = load(directory)  # again, under the lock
    names = Names.for_dir(directory)
    with emit.step(None, PHASE, "base") as step:
        base, built = rootfs.ensure_base(arch, mirror)
        step.changed = built
        step.message = str(base)

    with emit.step(None, PHASE, "network") as step, registry.machine_lock():
        _prune_registry(emit)
        slot = _choose_slot(names, record)
        if record is None:
            record = Record(directory=str(directory), ident=names.ident, slot=slot, arch=arch,
                            base=str(base), created_dir=created)
        record.slot, record.base = slot, str(base)
        taken = list(record.nodes)
        record.nodes = taken + suggest_names(count - len(taken), taken=taken)
        save(record)  # before anything starts: `down` can always undo what follows
        registry.register(registry.Entry(names.ident, str(directory), slot))
        step.changed = network.ensure_bridge(names, record.plan)
        step.changed |= network.ensure_forward_rules(names)
        step.message = f"{names.bridge} {record.plan.bridge}/24"
        raised = hostlimits.raise_for(_nodes_on_machine())
        if raised:
            emit.emit(None, PHASE, "host limits", Status.INFO, changed=True,
                      message=f"fs.inotify.max_user_instances raised to {raised}")
    sandbox = record.info()
    _report_strays(record, emit)

    with emit.step(None, PHASE, "apt proxy") as step, registry.machine_lock():
        step.changed = hostservices.ensure_apt_proxy(
            _live_bridge_addresses(names.ident), sandbox.bridge_address)
        step.message = sandbox.apt_proxy_url
    with emit.step(None, PHASE, "package server") as step:
        sdir = state_dir(directory)
        step.changed = hostservices.ensure_package_server(
            sandbox.packages_dir, sandbox.bridge_address, sdir / "http.pid", sdir / "http.log")
        step.message = sandbox.packages_url
    with emit.step(None, PHASE, "fleet file") as step:
        fleetfile.write(sandbox, mirror.uri)
        step.message = str(sandbox.fleet_path)

    password_hash = nodefiles.hash_password(nodefiles.PASSWORD)
    node_sources = sources.node_sources(mirror, rootfs.SUITE, sources.host_security_uri())
    apt_settings = tuple(sources.host_apt_settings())
    failed: dict[str, str] = {}

    def start(index: int) -> None:
        node = sandbox.nodes[index]
        try:
            _start_node(record, sandbox, index, password_hash, node_sources, apt_settings, emit)
        except Exception as exc:  # reported by its step; the other nodes go on
            failed[node.name] = str(exc) or type(exc).__name__

    # Two threads: key generation and process starts are CPU-bound on small machines.
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(start, range(len(sandbox.nodes))))

    timeout = 90 + 3 * len(sandbox.nodes)

    def wait(index: int) -> None:
        node = sandbox.nodes[index]
        if node.name in failed:
            return
        try:
            with emit.step(node.name, PHASE, "ssh") as step:
                try:
                    pid = processes.read_pid(node_dir(directory, node.name) / "supervisor.pid")
                    # Only whether it exited: its command line reads empty while it execs.
                    wait_ssh(node.address, timeout, lambda: processes.exists(pid))
                except Failed as exc:
                    tail = _console_tail(directory, node.name)
                    raise Failed(f"{exc}; console: {tail}" if tail else str(exc)) from None
                step.message = f"{node.address}:22"
        except Failed as exc:
            failed[node.name] = str(exc)

    with ThreadPoolExecutor(max_workers=min(32, len(sandbox.nodes))) as pool:
        list(pool.map(wait, range(len(sandbox.nodes))))
    if failed:
        first = sorted(failed)[0]
        raise Failed(f"sandbox nodes did not come up: {', '.join(sorted(failed))} "
                     f"({first}: {failed[first]}; console logs under "
                     f"{state_dir(directory) / 'nodes'})")
    return sandbox


def _start_node(record: Record, sandbox: Sandbox, index: int, password_hash: str,
                node_sources: str, apt_settings: tuple[str, ...], emit: Emitter) -> None:
    directory = Path(record.directory)
    node = sandbox.nodes[index]
    names = record.names
    if _supervisor_pid(directory, node.name):
        emit.emit(node.name, PHASE, "boot", Status.SKIPPED, message="already running")
        return
    with emit.step(node.name, PHASE, "prepare") as step:
        leftovers = _kill_node_processes(directory, names, index, node.name)
        cgroups.remove_node(node.netns)
        if leftovers:
            emit.emit(node.name, PHASE, "leftovers", Status.INFO, changed=True,
                      message=f"stopped {leftovers} processes left by a crashed run")
        ndir = node_dir(directory, node.name)
        for sub in ("upper", "work", "root"):
            (ndir / sub).mkdir(parents=True, exist_ok=True)
        config = nodefiles.NodeConfig(
            name=node.name, index=index, address=node.address, gateway=sandbox.bridge_address,
            apt_proxy=sandbox.apt_proxy_url, packages_host=sandbox.bridge_address,
            sources=node_sources, apt_settings=apt_settings)
        nodefiles.personalize(Path(record.base), ndir / "upper", config, password_hash)
        step.changed = network.ensure_node_network(names, record.plan, index)
    with emit.step(node.name, PHASE, "boot") as step:
        run = NodeRun(name=node.name, machine=node.netns, base=record.base,
                      upper=str(ndir / "upper"), work=str(ndir / "work"),
                      root=str(ndir / "root"), netns=node.netns,
                      status=str(ndir / "status.json"))
        config_path = _supervisor_config(directory, node.name)
        run.save(config_path)
        argv = ["unshare", "--mount", "--propagation", "private", "--",
                sys.executable, "-m", "pifleet.sandbox.supervisor", str(config_path)]
        pid = processes.spawn(argv, ndir / "console.log", pid_file=ndir / "supervisor.pid")
        step.changed = True
        step.message = f"supervisor pid {pid}"


def _report_strays(record: Record, emit: Emitter) -> None:
    """Tell about (and remove) namespaces or links of node numbers the record does not have."""
    names = record.names
    known = {names.netns(i) for i in range(len(record.nodes))}
    for netns in network.stray_netns(names):
        if netns not in known:
            index = int(netns.rsplit("-", 1)[1])
            processes.signal_all(network.netns_pids(netns), signal.SIGKILL)
            network.remove_node_network(names, index)
            emit.emit(None, PHASE, "leftovers", Status.INFO, changed=True,
                      message=f"removed stale namespace {netns}")


def _kill_node_processes(directory: Path, names: Names, index: int, name: str) -> int:
    """Stop whatever a crashed run of a node left: supervisor, nspawn, node processes."""
    pids = processes.find(str(node_dir(directory, name)) + "/")
    pids += network.netns_pids(names.netns(index))
    if pids:
        processes.signal_all(pids, signal.SIGKILL)
        processes.wait_gone(pids, 10)
    return len(pids)


# --- down ------------------------------------------------------------------------------------

def down(directory: Path, emit: Emitter | None = None) -> bool:
    """Remove the sandbox in `directory` and everything it made. True if anything was there.

    Works from the record and from naming conventions, so it also cleans up after a crash or
    after the folder was deleted; running it again finds nothing and changes nothing.
    """
    emit = emit or Emitter()
    hostcheck.require_root("down")
    hostcheck.ensure_sbin_on_path()
    directory = Path(directory).absolute()
    names = Names.for_dir(directory)
    record = load(directory)
    sdir = state_dir(directory)
    if sdir.is_dir():
        with registry.dir_lock(sdir):
            return _down_locked(directory, names, record, emit)
    return _down_locked(directory, names, record, emit)


def _down_locked(directory: Path, names: Names, record: Record | None, emit: Emitter) -> bool:
    sdir = state_dir(directory)
    changed = False
    with emit.step(None, PHASE, "stop nodes") as step:
        marker = str(sdir) + "/"
        supervisors = [p for p in processes.find(marker)
                       if "pifleet.sandbox.supervisor" in processes.cmdline(p)]
        # SIGTERM lets each node's systemd shut down; whatever hangs is killed after that.
        hard = processes.stop(supervisors, timeout=30 + len(supervisors))
        rest = processes.find(marker)
        for netns in network.stray_netns(names):
            rest += network.netns_pids(netns)
        if rest:
            processes.signal_all(rest, signal.SIGKILL)
            processes.wait_gone(rest, 10)
        step.changed = bool(supervisors or rest)
        step.message = f"{len(supervisors)} nodes stopped" + (
            f", {len(hard) + len(rest)} processes killed" if hard or rest else "")
        changed |= step.changed
    with emit.step(None, PHASE, "remove network") as step:
        removed = []
        for netns in network.stray_netns(names):
            network.remove_node_network(names, int(netns.rsplit("-", 1)[1]))
            removed.append(netns)
        for link in network.stray_links(names):
            run(["ip", "link", "del", link], check=False)
            removed.append(link)
        if network.remove_bridge(names):
            removed.append(names.bridge)
        rules = network.remove_forward_rules(names)
        if rules:
            removed.append(f"{rules} FORWARD rules")
        for machine in NSPAWN_PROPAGATE.glob(f"{names.netns_prefix}*"):
            shutil.rmtree(machine, ignore_errors=True)
        busy = cgroups.remove(names.netns_prefix)
        if busy:
            raise Failed("cgroups still hold processes: " + ", ".join(map(str, busy[:3])))
        step.changed = bool(removed)
        step.message = ", ".join(removed) or "nothing left"
        changed |= step.changed
    with emit.step(None, PHASE, "host services") as step:
        step.changed = hostservices.stop_package_server(directory / PACKAGES_DIR,
                                                        sdir / "http.pid")
        with registry.machine_lock():
            registry.unregister(names.ident)
            if not _live_bridge_addresses(names.ident):
                step.changed |= hostservices.stop_apt_proxy()
                step.changed |= hostlimits.restore() is not None
                step.changed |= bool(emulation.restore())
                cgroups.remove_parent()
        changed |= step.changed
    with emit.step(None, PHASE, "remove files") as step:
        gone = []
        for path in (sdir, directory / PACKAGES_DIR, directory / FLEET_FILE,
                     directory / FLEET_STATE):
            if path.exists() or path.is_symlink():
                if path.is_dir() and not path.is_symlink():
                    remove_tree(path)
                else:
                    path.unlink()
                gone.append(path.name)
        if record and record.created_dir and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
            gone.append(str(directory))
        step.changed = bool(gone)
        step.message = ", ".join(gone) or "nothing left"
        changed |= step.changed
    return changed


# --- list ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Listing:
    """One sandbox on this machine, as `sandbox list` shows it."""

    ident: str
    directory: Path | None
    bridge: str
    network: str | None
    nodes: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        """running, partial, stopped or stale."""
        if self.problems:
            return "stale"
        if self.nodes and len(self.running) == len(self.nodes):
            return "running"
        return "partial" if self.running else "stopped"


def list_sandboxes() -> list[Listing]:
    """Every sandbox this machine knows of: registered ones, and bridges left by others."""
    hostcheck.ensure_sbin_on_path()
    bridges = set(network.sandbox_bridges())
    found: list[Listing] = []
    seen = set()
    for entry in registry.entries():
        seen.add(entry.ident)
        directory = Path(entry.directory)
        names = Names(entry.ident)
        record = load(directory)
        problems = []
        if record is None:
            problems.append(f"no state in {directory}")
        if names.bridge not in bridges:
            problems.append("bridge missing")
        node_names = record.nodes if record else []
        running = [n for n in node_names if _supervisor_pid(directory, n)]
        found.append(Listing(entry.ident, directory, names.bridge, str(Plan(entry.slot).network),
                             list(node_names), running, problems))
    for bridge in sorted(bridges):
        ident = bridge.removeprefix(Names("").bridge)
        if ident not in seen:
            found.append(Listing(ident, None, bridge, None, [], [],
                                 ["bridge without a registered sandbox"]))
    return found
