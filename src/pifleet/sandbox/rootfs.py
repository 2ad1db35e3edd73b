"""The base root file system every node boots from: debootstrap once, cache, share.

Nodes never write to the base: each gets an overlayfs upper layer of its own. The base is
built in a temporary folder next to its final place and renamed when complete, under a lock,
so parallel `up`s build it once and nobody ever boots a half-built base.
"""

from __future__ import annotations

import fcntl
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pifleet.errors import BadInput, Failed
from pifleet.sandbox import emulation
from pifleet.sandbox.commands import run
from pifleet.sandbox.fsutil import remove_tree
from pifleet.sandbox.sources import Mirror

CACHE_ENV = "PIFLEET_CACHE"
DEFAULT_CACHE = Path("/var/cache/pifleet")
SUITE = "bookworm"
PACKAGES = ("openssh-server", "systemd", "systemd-sysv", "dbus", "sudo", "iptables",
            "iproute2", "ca-certificates", "curl", "gnupg", "python3")
# Raise when `prepare_base` changes, so older caches are not reused.
BASE_REVISION = 1


def cache_dir() -> Path:
    """Where bases are kept: $PIFLEET_CACHE or /var/cache/pifleet."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def native_arch() -> str:
    """This machine's Debian architecture name (amd64, arm64, ...)."""
    try:
        return run(["dpkg", "--print-architecture"]).stdout.strip()
    except (OSError, Failed):
        machine = platform.machine()
        return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def resolve_arch(arch: str) -> str:
    """`native` or a Debian architecture name -> the Debian architecture name."""
    if arch == "native":
        return native_arch()
    if arch not in ("amd64", "arm64"):
        raise BadInput(f"--arch {arch}: choose native or arm64")
    return arch


def base_path(arch: str, suite: str = SUITE) -> Path:
    """The cached base for `arch` (a Debian architecture name)."""
    return cache_dir() / "rootfs" / f"{suite}-{arch}-r{BASE_REVISION}"


def debootstrap_argv(target: Path, arch: str, mirror: Mirror, suite: str = SUITE) -> list[str]:
    """The debootstrap command that builds a base into `target`."""
    return ["debootstrap", "--variant=minbase", f"--arch={arch}",
            f"--include={','.join(PACKAGES)}", suite, str(target), mirror.uri]


def prepare_base(root: Path) -> None:
    """Make a fresh debootstrap a neutral template: nothing that must differ per node.

    Host keys and machine-id are made per node (a shared base would give every node the same
    ones); the package cache is dropped because no node needs it.
    """
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    dbus_id.unlink(missing_ok=True)
    dbus_id.parent.mkdir(parents=True, exist_ok=True)
    dbus_id.symlink_to("/etc/machine-id")
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    (root / "etc/hostname").write_text("localhost\n")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_base(arch: str, mirror: Mirror, log: Path | None = None) -> tuple[Path, bool]:
    """The cached base for `arch`, built first if missing. Returns (path, built now)."""
    final = base_path(arch)
    if final.is_dir():
        return final, False
    if arch != native_arch() and not emulation.ready(arch):
        raise BadInput(f"--arch {arch}: this machine cannot run {arch} programs yet")
    with _locked(final.parent / ".lock"):
        if final.is_dir():  # another `up` built it while we waited
            return final, False
        for stale in final.parent.glob(".build-*"):
            remove_tree(stale)  # a build that crashed before its rename
        work = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".build-{final.name}-"))
        log = log or final.parent / f"{final.name}.log"
        target = work / "root"
        with log.open("w") as out:
            proc = subprocess.run(debootstrap_argv(target, arch, mirror), stdout=out,
                                  stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            tail = log.read_text().strip().splitlines()[-3:]
            raise Failed(f"debootstrap exited {proc.returncode} (log: {log}): "
                         + " / ".join(tail))
        prepare_base(target)
        os.rename(target, final)
        remove_tree(work)
    return final, True
