"""A Debian root for running what a card runs at first boot (cloud-init, firstrun.sh) in a
chroot: built once with debootstrap from this machine's mirror and cached (like the sandbox's
base), then used through a throw-away overlay, so the cached root never changes.

Every run happens in new mount and UTS namespaces: the overlay and /proc vanish when the
command ends (nothing to clean up after a failed test), and a `hostname` run by the card's
scripts renames only the namespace, never this machine.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from pifleet.sandbox.rootfs import cache_dir
from pifleet.sandbox.sources import host_mirror

# python3-cffi-backend by name: debootstrap does not resolve the virtual package that
# python3-cryptography (needed by cloud-init) depends on.
PACKAGES = ("cloud-init", "openssh-server", "sudo", "python3-cffi-backend")
REVISION = 1


def debian_root() -> Path:
    """The cached root (built on first use: a minute or two); skips the test if it cannot be."""
    final = cache_dir() / "test-roots" / f"bookworm-cloud-init-r{REVISION}"
    if final.is_dir():
        return final
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("building the Debian test root needs root and debootstrap")
    final.parent.mkdir(parents=True, exist_ok=True)
    with (final.parent / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        try:
            mirror = host_mirror()
        except LookupError as exc:
            pytest.skip(str(exc))
        work = Path(tempfile.mkdtemp(dir=final.parent, prefix=".build-"))
        try:
            proc = subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                 "bookworm", str(work / "root"), mirror.uri],
                capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                pytest.fail("debootstrap failed: " + proc.stdout[-2000:] + proc.stderr[-2000:])
            root = work / "root"
            for deb in (root / "var/cache/apt/archives").glob("*.deb"):
                deb.unlink()
            # No package sources: a `packages:` entry then needs nothing from the network.
            (root / "etc/apt/sources.list").write_text("")
            os.rename(root, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


class Chroot:
    """The cached root under an overlay whose upper layer lives in `work` (kept between runs,
    so one test can set up, run and inspect in several steps)."""

    def __init__(self, work: Path) -> None:
        self.base = debian_root()
        self.upper = work / "upper"
        self.workdir = work / "work"
        self.merged = work / "merged"
        for path in (self.upper, self.workdir, self.merged):
            path.mkdir(parents=True, exist_ok=True)

    def path(self, inside: str) -> Path:
        """Where a file written by a run is found afterwards (the upper layer), else the base."""
        rel = inside.lstrip("/")
        changed = self.upper / rel
        return changed if changed.exists() or changed.is_symlink() else self.base / rel

    def put(self, inside: str, data: bytes | str, mode: int = 0o644) -> None:
        """Place a file into the root before a run."""
        target = self.upper / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)
        target.chmod(mode)

    def run(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a shell command line inside the root (as root, in new mount/UTS namespaces)."""
        merged = shlex.quote(str(self.merged))
        setup = (f"mount -t overlay overlay -o lowerdir={shlex.quote(str(self.base))},"
                 f"upperdir={shlex.quote(str(self.upper))},"
                 f"workdir={shlex.quote(str(self.workdir))} {merged} && "
                 f"mount -t proc proc {merged}/proc && "
                 f"exec chroot {merged} /bin/sh -c {shlex.quote(command)}")
        return subprocess.run(["unshare", "--mount", "--uts", "--fork", "sh", "-c", setup],
                              capture_output=True, text=True, timeout=timeout, check=False,
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"})
