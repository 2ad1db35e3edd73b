"""What `sandbox up` needs from this machine: root, Linux, and a few Debian packages, which it
installs itself on Debian (or names exactly elsewhere).
"""

from __future__ import annotations

import os
import shutil
import sys

from pifleet.errors import BadInput, Failed
from pifleet.sandbox.commands import run

# Command -> the Debian package that provides it.
REQUIRED = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "ip": "iproute2",
    "iptables": "iptables",
    "unshare": "util-linux",
    "ssh-keygen": "openssh-client",
    "openssl": "openssl",
}
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def require_root(action: str) -> None:
    """BadInput unless running as root on Linux."""
    if not sys.platform.startswith("linux"):
        raise BadInput(f"sandbox {action} needs Linux (network namespaces, systemd-nspawn)")
    if os.geteuid() != 0:
        raise BadInput(f"sandbox {action} needs root: run it with sudo")


def _which(command: str) -> str | None:
    # Root's PATH may lack the sbin folders when reached through `sudo -E` or a venv.
    path = os.environ.get("PATH", "") + ":" + ":".join(SBIN)
    return shutil.which(command, path=path)


def missing_packages() -> list[str]:
    """Debian packages whose commands are missing here, sorted."""
    return sorted({pkg for cmd, pkg in REQUIRED.items() if _which(cmd) is None})


def missing_debs(packages: tuple[str, ...]) -> list[str]:
    """Those of the Debian `packages` that dpkg does not list as installed."""
    missing = []
    for package in packages:
        proc = run(["dpkg-query", "-W", "-f=${Status}", package], check=False)
        if "install ok installed" not in proc.stdout:
            missing.append(package)
    return missing


def ensure_sbin_on_path() -> None:
    """Make sure the sbin folders are searched (commands like `ip` live there)."""
    parts = os.environ.get("PATH", "").split(":")
    os.environ["PATH"] = ":".join(parts + [d for d in SBIN if d not in parts])


def install_packages(packages: list[str]) -> None:
    """apt-get install `packages` on Debian; BadInput saying what to install otherwise."""
    if not packages:
        return
    if _which("apt-get") is None:
        raise BadInput("sandbox up needs these Debian packages (or their equivalents): "
                       + " ".join(packages))
    env_note = "DEBIAN_FRONTEND=noninteractive"
    os.environ.setdefault("DEBIAN_FRONTEND", "noninteractive")
    proc = run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y",
                "--no-install-recommends", *packages], check=False, timeout=1200)
    if proc.returncode != 0:
        raise Failed(f"could not install {' '.join(packages)} ({env_note} apt-get install -y "
                     f"{' '.join(packages)} exited {proc.returncode}): "
                     + (proc.stderr.strip().splitlines() or ["no message"])[-1])
