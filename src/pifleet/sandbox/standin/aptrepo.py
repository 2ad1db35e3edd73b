"""A flat apt repository in pkgs.k8s.io's layout, signed with gpg.

Layout per minor: `core:/stable:/v1.NN/deb/` holding `Packages`, `Packages.gz`, `Release`,
`Release.gpg`, `InRelease`, `Release.key` (ASCII-armoured, like the real one) and the .debs under
`all/`. Sources use it as `deb [signed-by=KEYRING] URL /` (facts.md section 1).
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pifleet.errors import Failed

from .debs import Package

KEY_UID = "pifleet sandbox stand-in repository <sandbox@pifleet.invalid>"


def _digests(path: Path) -> dict[str, str]:
    data = path.read_bytes()
    return {"MD5sum": hashlib.md5(data).hexdigest(), "SHA1": hashlib.sha1(data).hexdigest(),
            "SHA256": hashlib.sha256(data).hexdigest()}


def packages_index(repo: Path, built: Sequence[tuple[Package, Path]]) -> str:
    """The `Packages` text for the .debs in `built` (paths under `repo`)."""
    stanzas = []
    for package, deb in built:
        control = package.control().rstrip("\n")
        sums = _digests(deb)
        stanzas.append(control.replace("\nDescription:", (
            f"\nFilename: {deb.relative_to(repo)}\nSize: {deb.stat().st_size}\n"
            + "".join(f"{k}: {v}\n" for k, v in sums.items()) + "Description:"), 1))
    return "\n\n".join(stanzas) + "\n"


def release(repo: Path, minor: str, files: Sequence[str]) -> str:
    """The `Release` text with the checksums of the index files."""
    lines = ["Origin: pifleet sandbox", f"Label: Kubernetes stand-in v{minor} (sandbox)",
             "Architectures: all amd64 arm64 armhf",
             f"Date: {email.utils.formatdate(usegmt=True)}",
             f"Description: sandbox stand-in packages for Kubernetes v{minor}, not Kubernetes"]
    for algo, fn in (("MD5Sum", hashlib.md5), ("SHA1", hashlib.sha1),
                     ("SHA256", hashlib.sha256)):
        lines.append(f"{algo}:")
        for name in files:
            data = (repo / name).read_bytes()
            lines.append(f" {fn(data).hexdigest()} {len(data):>8} {name}")
    return "\n".join(lines) + "\n"


@contextmanager
def signing_key() -> Iterator[Path]:
    """A fresh ed25519 signing key in a temporary GNUPGHOME, destroyed (agent too) on exit."""
    home = Path(tempfile.mkdtemp(prefix="pifleet-repo-gpg-"))
    os.chmod(home, 0o700)
    try:
        _gpg(home, "--quick-generate-key", KEY_UID, "ed25519", "sign", "never")
        yield home
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"],
                       capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


def _gpg(home: Path, *args: str) -> bytes:
    result = subprocess.run(["gpg", "--homedir", str(home), "--batch", "--yes", "--quiet",
                             "--pinentry-mode", "loopback", "--passphrase", "", *args],
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise Failed(f"gpg {' '.join(args[:2])} failed: {result.stderr.decode().strip()}")
    return result.stdout


def write_index(repo: Path, minor: str, built: Sequence[tuple[Package, Path]],
                gpg_home: Path) -> None:
    """Packages, Release, InRelease, Release.gpg and Release.key for one repository."""
    text = packages_index(repo, built)
    (repo / "Packages").write_text(text)
    with gzip.open(repo / "Packages.gz", "wb", compresslevel=9) as fh:
        fh.write(text.encode())
    (repo / "Release").write_text(release(repo, minor, ["Packages", "Packages.gz"]))
    _gpg(gpg_home, "--local-user", KEY_UID, "--clearsign", "--output",
         str(repo / "InRelease"), str(repo / "Release"))
    _gpg(gpg_home, "--local-user", KEY_UID, "--armor", "--detach-sign", "--output",
         str(repo / "Release.gpg"), str(repo / "Release"))
    (repo / "Release.key").write_bytes(_gpg(gpg_home, "--armor", "--export", KEY_UID))
