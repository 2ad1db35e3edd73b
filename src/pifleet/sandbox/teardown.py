"""`sandbox down`: remove a sandbox and everything it made, also after a crash.

Works from the sandbox's record and from naming conventions, so it also cleans up after a
crash or after its folder was deleted; running it again finds nothing and changes nothing.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

from pifleet.errors import BadInput, Failed
from pifleet.events import Emitter
from pifleet.fleet.logs import log_dir
from pifleet.sandbox import (
    cgroups,
    emulation,
    fleetfile,
    hostcheck,
    hostlimits,
    hostservices,
    network,
    processes,
    registry,
    strays,
)
from pifleet.sandbox.commands import run
from pifleet.sandbox.fsutil import remove_tree
from pifleet.sandbox.naming import BRIDGE_PREFIX, Names
from pifleet.sandbox.runtime import PHASE, live_bridge_addresses
from pifleet.sandbox.state import FLEET_FILE, PACKAGES_DIR, Record, load, state_dir

NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")
# The fleet's key and known_hosts (made by `trust`) belong to nodes that `down` destroys.
FLEET_STATE = ".pifleet"


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
    if record is None and not _traces(directory, names) and not _vanished_leftovers():
        # A mistyped folder must not look like a successful `down`. (Rules and proxies of
        # vanished sandboxes are removed by any `down`, so those still give it work.)
        raise BadInput(f"{directory}: no sandbox here, nor anything left of one on this "
                       "machine: nothing to remove (`pifleet sandbox list` shows the "
                       "sandboxes)")
    if sdir.is_dir():
        with registry.dir_lock(sdir):
            return _down_locked(directory, names, record, emit)
    return _down_locked(directory, names, record, emit)


def _traces(directory: Path, names: Names) -> bool:
    """Whether anything of a sandbox of `directory` exists: its files, host objects or logs."""
    sdir = state_dir(directory)
    return bool(
        sdir.exists() or fleetfile.is_ours(directory / FLEET_FILE)
        or any(e.ident == names.ident for e in registry.entries())
        or processes.find(str(sdir) + "/") or network.stray_netns(names)
        or network.stray_links(names) or names.bridge in network.link_names()
        or names.ident in network.rule_idents()
        or names.ident in hostservices.apt_proxy_idents()
        or log_dir(fleetfile.fleet_name(names.ident)).exists())


def _vanished_leftovers() -> bool:
    """Whether this machine holds rules or apt proxies of sandboxes that are gone (which
    `strays.remove` takes away)."""
    known = {e.ident for e in registry.entries()}
    known |= {bridge[len(BRIDGE_PREFIX):] for bridge in network.sandbox_bridges()}
    return bool((network.rule_idents() | hostservices.apt_proxy_idents()) - known)


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
        rules = network.remove_rules(names)
        if rules:
            removed.append(f"{rules} iptables rules")
        for machine in NSPAWN_PROPAGATE.glob(f"{names.netns_prefix}*"):
            shutil.rmtree(machine, ignore_errors=True)
        busy = cgroups.remove(names.netns_prefix)
        if busy:
            # A process that left its node's network namespace still sits in its cgroups.
            stragglers = cgroups.pids_in(busy)
            processes.signal_all(stragglers, signal.SIGKILL)
            processes.wait_gone(stragglers, 10)
            busy = cgroups.remove(names.netns_prefix)
        step.changed = bool(removed)
        step.message = ", ".join(removed) or "nothing left"
        changed |= step.changed
    with emit.step(None, PHASE, "host services") as step:
        step.changed = hostservices.stop_package_server(directory / PACKAGES_DIR,
                                                        sdir / "http.pid")
        step.changed |= hostservices.stop_apt_proxy(names.ident)
        with registry.machine_lock():
            registry.unregister(names.ident)
            strays.remove(emit)
            if not live_bridge_addresses(names.ident):
                step.changed |= hostservices.stop_legacy_apt_cacher()
                step.changed |= hostlimits.restore() is not None
                step.changed |= bool(emulation.restore())
                cgroups.remove_parent()
        changed |= step.changed
    with emit.step(None, PHASE, "remove files") as step:
        gone = []
        # Only what `up` made: a fleet file it did not write, and the fleet key and secrets of
        # a folder that never held a sandbox, belong to the user.
        ours = [sdir, directory / PACKAGES_DIR]
        if fleetfile.is_ours(directory / FLEET_FILE):
            ours.append(directory / FLEET_FILE)
            if record is not None:
                ours.append(directory / FLEET_STATE)
        for path in ours:
            if path.exists() or path.is_symlink():
                if path.is_dir() and not path.is_symlink():
                    remove_tree(path)
                else:
                    path.unlink()
                gone.append(path.name)
        # The logs of the sandbox's fleet: its nodes are gone, and the logs may hold what
        # only those nodes should have known.
        logs = log_dir(fleetfile.fleet_name(names.ident))
        if logs.is_dir():
            shutil.rmtree(logs)
            gone.append(str(logs))
        if record and record.created_dir and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
            gone.append(str(directory))
        step.changed = bool(gone)
        step.message = ", ".join(gone) or "nothing left"
        changed |= step.changed
    if busy:  # the rest is cleaned up; running `down` again retries these
        raise Failed("cgroups still hold processes: " + ", ".join(map(str, busy[:3])))
    return changed
