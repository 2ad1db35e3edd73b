"""The sandbox's Kubernetes stand-in: signed apt repository of kubeadm, kubelet and kubectl.

The programs that run on the nodes live in `node/` (standard library, cryptography and yaml
only); this facade builds them into .deb packages and a pkgs.k8s.io-shaped repository.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import aptrepo, debs

# The patch releases each minor's repository holds, oldest first. Two minors and two patches in
# the newer one, so that both a minor and a patch upgrade can be rehearsed (1.33.5 -> 1.34.1 ->
# 1.34.2); none from 1.35, whose kubelet refuses the cgroup v1 sandbox nodes see (design.md).
PATCH = {"1.33": ("1.33.5",), "1.34": ("1.34.1", "1.34.2")}
VERSIONS = tuple(PATCH)
# What a sandbox's fleet file asks for.
DEFAULT_VERSION = "1.34"


def repo_dir(dest: Path, minor: str) -> Path:
    """Where the repository of one minor lives under `dest`."""
    return dest / "core:" / "stable:" / f"v{minor}" / "deb"


def ensure_repository(dest: Path) -> bool:
    """Build the repository under `dest` unless it is complete; True if it was built.

    An existing one is kept: nodes that already trust its signing key must keep working when
    `sandbox up` runs again.
    """
    if all((repo_dir(dest, minor) / "InRelease").exists() for minor in VERSIONS):
        return False
    build_repository(dest, VERSIONS)
    return True


def build_repository(dest: Path, versions: Sequence[str] = VERSIONS) -> None:
    """Write one signed repository per minor under `dest`, signed by a key made for this call.

    The private key lives in a temporary directory that is removed before returning; only the
    ASCII-armoured public key (`Release.key`) lands in `dest`.
    """
    with tempfile.TemporaryDirectory(prefix="pifleet-debs-") as tmp, \
            aptrepo.signing_key() as gpg_home:
        work = Path(tmp)
        # The same files in every minor's repository: a node moving to the next minor's
        # repository finds the very package it has.
        shared = [(pkg, debs.build(pkg, work, work / "shared")) for pkg in debs.shared()]
        for minor in versions:
            repo = repo_dir(dest, minor)
            if repo.exists():
                shutil.rmtree(repo)
            pool = repo / "all"
            pool.mkdir(parents=True)
            built = [(pkg, Path(shutil.copy2(deb, pool))) for pkg, deb in shared]
            for kube_version in PATCH.get(minor, (f"{minor}.0",)):
                built += [(pkg, debs.build(pkg, work, pool))
                          for pkg in debs.packages(kube_version)]
            aptrepo.write_index(repo, minor, built, gpg_home)


def repository_templates(base_url: str) -> tuple[str, str]:
    """(package_repository, package_key_url) templates with `{minor}` for the fleet file."""
    base = base_url.rstrip("/")
    return (f"{base}/core:/stable:/v{{minor}}/deb/",
            f"{base}/core:/stable:/v{{minor}}/deb/Release.key")
