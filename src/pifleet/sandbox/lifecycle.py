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
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pifleet.errors import BadInput, Failed, describe
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
    standin,
    strays,
)
from pifleet.sandbox.addresses import MAX_NODES, Plan, choose_slot
from pifleet.sandbox.naming import Names
from pifleet.sandbox.runtime import (
    BOOT_SECONDS,
    PHASE,
    console_tail,
    nodes_on_machine,
    ssh_banner,
    still_booting,
    supervisor_config,
    supervisor_pid,
    wait_ssh,
)
from pifleet.sandbox.state import (
    FLEET_FILE,
    Record,
    Sandbox,
    load,
    node_dir,
    save,
    state_dir,
)
from pifleet.sandbox.supervisor import NodeRun

# A running node whose sshd does not answer within this, and whose systemd is no longer
# starting, is restarted by `up`; `restart` gives each node this long to shut down cleanly.
SSH_GRACE_SECONDS = 3.0
SHUTDOWN_SECONDS = 20.0


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


def restart(directory: Path, nodes: list[str] | None = None,
            emit: Emitter | None = None) -> Sandbox:
    """Power-cycle nodes of the sandbox in `directory` (all when `nodes` is None), then
    converge the rest as `up` does and wait for SSH.

    Brings back a node whose services were stopped (sshd, say). BadInput before touching
    anything when there is no sandbox there or a name is not one of its nodes.
    """
    emit = emit or Emitter()
    hostcheck.require_root("restart")
    directory = Path(directory).absolute()
    record = load(directory)
    if record is None:
        raise BadInput(f"{directory}: no sandbox here (no {state_dir(directory).name}/"
                       "state.json): `pifleet sandbox up --dir DIR` makes one; "
                       "`pifleet sandbox list` shows those on this machine")
    unknown = [n for n in nodes or [] if n not in record.nodes]
    if unknown:
        raise BadInput(f"the sandbox in {directory} has no node {', '.join(unknown)} "
                       f"(its nodes: {', '.join(record.nodes)})")
    try:
        mirror = sources.host_mirror()
    except LookupError as exc:
        raise BadInput(str(exc)) from exc
    hostcheck.ensure_sbin_on_path()
    with registry.dir_lock(state_dir(directory)):
        record = load(directory) or record
        chosen = nodes if nodes is not None else list(record.nodes)
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(chosen)))) as pool:
            list(pool.map(lambda name: _power_off(record, name, emit), chosen))
        return _up_locked(directory, len(record.nodes), record.arch, mirror, False, emit)


def _power_off(record: Record, name: str, emit: Emitter) -> None:
    """Shut one node down (cleanly if it lets us within a bounded time) and end what it left."""
    directory = Path(record.directory)
    with emit.step(name, PHASE, "power off") as step:
        pid = supervisor_pid(directory, name)
        # nspawn turns the supervisor's SIGTERM into an orderly shutdown of the node.
        hard = processes.stop([pid], timeout=SHUTDOWN_SECONDS) if pid else []
        left = _kill_node_processes(directory, record.names, record.nodes.index(name), name)
        step.changed = bool(pid or left)
        step.message = ("was not running" if not pid else "killed after "
                        f"{SHUTDOWN_SECONDS} s" if hard else "shut down")


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
        strays.remove(emit)
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
        step.changed |= network.ensure_rules(names, record.plan)
        step.message = f"{names.bridge} {record.plan.bridge}/24"
        raised = hostlimits.raise_for(nodes_on_machine())
        if raised:
            emit.emit(None, PHASE, "host limits", Status.INFO, changed=True,
                      message=f"fs.inotify.max_user_instances raised to {raised}")
    sandbox = record.info()
    _report_strays(record, emit)

    with emit.step(None, PHASE, "apt proxy") as step:
        step.changed = hostservices.ensure_apt_proxy(
            names.ident, sandbox.bridge_address, state_dir(directory) / "apt-proxy.log")
        step.message = sandbox.apt_proxy_url
    with emit.step(None, PHASE, "package repository") as step:
        step.changed = standin.ensure_repository(sandbox.packages_dir)
        step.message = "kubeadm, kubelet, kubectl " + ", ".join(standin.VERSIONS)
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
            failed[node.name] = describe(exc)

    # Two threads: key generation and process starts are CPU-bound on small machines.
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(start, range(len(sandbox.nodes))))

    timeout = BOOT_SECONDS + 3 * len(sandbox.nodes)

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
                    tail = console_tail(directory, node.name)
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
                     f"{state_dir(directory) / 'nodes'}); to try again: pifleet sandbox "
                     f"restart --dir {directory} --nodes {','.join(sorted(failed))}")
    return sandbox


def _start_node(record: Record, sandbox: Sandbox, index: int, password_hash: str,
                node_sources: str, apt_settings: tuple[str, ...], emit: Emitter) -> None:
    directory = Path(record.directory)
    node = sandbox.nodes[index]
    names = record.names
    if supervisor_pid(directory, node.name):
        if _answers_or_still_booting(directory, node.name, node.address):
            emit.emit(node.name, PHASE, "boot", Status.SKIPPED, message="already running")
            return
        emit.emit(node.name, PHASE, "ssh", Status.INFO, changed=True,
                  message=f"sshd on {node.address} does not answer although the node runs: "
                  "restarting the node")
        _power_off(record, node.name, emit)
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
        config_path = supervisor_config(directory, node.name)
        run.save(config_path)
        argv = ["unshare", "--mount", "--propagation", "private", "--",
                sys.executable, "-m", "pifleet.sandbox.supervisor", str(config_path)]
        pid = processes.spawn(argv, ndir / "console.log", pid_file=ndir / "supervisor.pid")
        step.changed = True
        step.message = f"supervisor pid {pid}"


def _answers_or_still_booting(directory: Path, name: str, address: str) -> bool:
    """Whether a running node's sshd answers, or the node is still booting (then the wait
    for SSH that follows gives it time)."""
    deadline = time.monotonic() + SSH_GRACE_SECONDS
    while time.monotonic() < deadline:
        if ssh_banner(address):
            return True
        time.sleep(0.5)
    return still_booting(directory, name)


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
