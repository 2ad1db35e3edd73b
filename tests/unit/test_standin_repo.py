"""The stand-in's .deb packages and signed apt repository, fetched by a real apt-get."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pifleet.sandbox.standin import build_repository, repo_dir, repository_templates

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("dpkg-deb", "gpg", "apt-get")),
    reason="needs dpkg-deb, gpg and apt-get")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("packages")
    build_repository(dest)
    return dest


def test_layout_is_pkgs_k8s_io_like(repo: Path) -> None:
    for minor in ("1.33", "1.34"):
        d = repo / "core:" / "stable:" / f"v{minor}" / "deb"
        assert d == repo_dir(repo, minor)
        for f in ("Release", "InRelease", "Release.gpg", "Release.key", "Packages",
                  "Packages.gz"):
            assert (d / f).is_file(), f
        assert (d / "Release.key").read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    # No private key material anywhere in what gets served.
    for f in repo.rglob("*"):
        if f.is_file() and f.suffix != ".deb":
            assert b"PRIVATE KEY" not in f.read_bytes()


def test_templates_point_at_the_layout() -> None:
    repo_t, key_t = repository_templates("http://10.0.0.1:8080/")
    assert repo_t.format(minor="1.34") == "http://10.0.0.1:8080/core:/stable:/v1.34/deb/"
    assert key_t.format(minor="1.33") == "http://10.0.0.1:8080/core:/stable:/v1.33/deb/Release.key"


def test_debs_have_versions_and_debian_only_depends(repo: Path) -> None:
    pool = repo_dir(repo, "1.34") / "all"
    info = subprocess.run(["dpkg-deb", "-I", str(pool / "kubeadm_1.34.1-1.1_all.deb")],
                          capture_output=True, text=True, check=True).stdout
    assert "Package: kubeadm" in info and "Version: 1.34.1-1.1" in info
    assert "not Kubernetes" in info
    lib = subprocess.run(["dpkg-deb", "-f", str(pool / "kube-standin-lib_1.0.0-1_all.deb"),
                          "Depends"], capture_output=True, text=True, check=True).stdout
    assert "python3-cryptography" in lib and "python3-yaml" in lib
    files = subprocess.run(["dpkg-deb", "-c", str(pool / "kubelet_1.34.1-1.1_all.deb")],
                           capture_output=True, text=True, check=True).stdout
    assert "./usr/bin/kubelet" in files and "./lib/systemd/system/kubelet.service" in files
    # Each program says which version it is: kubeadm 1.34 can run beside kubelet 1.33.
    for minor, version in (("1.33", "1.33.5"), ("1.34", "1.34.1"), ("1.34", "1.34.2")):
        launcher = subprocess.run(
            f"dpkg-deb --fsys-tarfile {repo_dir(repo, minor)}/all/kubeadm_{version}-1.1_all.deb"
            " | tar -xO ./usr/bin/kubeadm", shell=True, capture_output=True, text=True,
            check=True).stdout
        assert f"paths.set_version('{version}')" in launcher
    depends = subprocess.run(["dpkg-deb", "-f", str(pool / "kubelet_1.34.2-1.1_all.deb"),
                              "Depends"], capture_output=True, text=True, check=True).stdout
    assert "kube-standin-lib (>= 1.0.0-1)" in depends
    # The shared packages are the same files in every minor's repository.
    for shared in ("kube-standin-lib_1.0.0-1_all.deb", "kubernetes-cni_1.7.1-1.1_all.deb"):
        assert (pool / shared).read_bytes() == (repo_dir(repo, "1.33") / "all" /
                                                shared).read_bytes()


def test_inrelease_verifies_with_release_key(repo: Path, tmp_path: Path) -> None:
    d = repo_dir(repo, "1.34")
    keyring = tmp_path / "key.gpg"
    subprocess.run(["gpg", "--batch", "--dearmor", "--output", str(keyring),
                    str(d / "Release.key")], check=True)
    ok = subprocess.run(["gpgv", "--keyring", str(keyring), str(d / "InRelease")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    tampered = tmp_path / "InRelease"
    tampered.write_text((d / "InRelease").read_text().replace("Packages.gz", "Packages.xz"))
    bad = subprocess.run(["gpgv", "--keyring", str(keyring), str(tampered)],
                         capture_output=True, text=True)
    assert bad.returncode != 0


@pytest.fixture
def served(repo: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(repo))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_apt_get_updates_and_downloads_over_http(repo: Path, served: str,
                                                 tmp_path: Path) -> None:
    repo_t, key_t = repository_templates(served)
    keyring = tmp_path / "kubernetes-apt-keyring.gpg"
    key = subprocess.run(["curl", "-fsS", key_t.format(minor="1.34")], capture_output=True,
                         check=True).stdout if shutil.which("curl") else (
        repo_dir(repo, "1.34") / "Release.key").read_bytes()
    subprocess.run(["gpg", "--batch", "--dearmor", "--output", str(keyring)], input=key,
                   check=True)
    sources = tmp_path / "sources.list"
    sources.write_text(f"deb [signed-by={keyring}] {repo_t.format(minor='1.34')} /\n")
    for d in ("state/lists/partial", "cache/archives/partial", "dl"):
        (tmp_path / d).mkdir(parents=True)
    opts = [f"-oDir::Etc::SourceList={sources}", "-oDir::Etc::SourceParts=/nonexistent",
            f"-oDir::State={tmp_path / 'state'}", f"-oDir::Cache={tmp_path / 'cache'}",
            "-oDebug::NoLocking=1", "-oAcquire::http::Proxy=false",
            "-oAPT::Sandbox::User=root"]
    update = subprocess.run(["apt-get", *opts, "update"], capture_output=True, text=True)
    assert update.returncode == 0 and "NO_PUBKEY" not in update.stderr, update.stderr
    assert "W:" not in update.stderr, update.stderr
    policy = subprocess.run(["apt-cache", *opts, "policy", "kubeadm"], capture_output=True,
                            text=True, check=True).stdout
    # Both patch releases, the newer the candidate; an older one can be pinned.
    assert "Candidate: 1.34.2-1.1" in policy and " 1.34.1-1.1 500" in policy
    dl = subprocess.run(["apt-get", *opts, "download", "kubeadm", "kubelet=1.34.1-1.1"],
                        capture_output=True, text=True, cwd=tmp_path / "dl")
    assert dl.returncode == 0, dl.stderr
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == [
        "kubeadm_1.34.2-1.1_all.deb", "kubelet_1.34.1-1.1_all.deb"]
    # A key from another build does not verify this repository.
    other = tmp_path / "other"
    build_repository(other, ("1.34",))
    subprocess.run(["gpg", "--batch", "--yes", "--dearmor", "--output", str(keyring)],
                   input=(repo_dir(other, "1.34") / "Release.key").read_bytes(), check=True)
    refused = subprocess.run(["apt-get", *opts, "update"], capture_output=True, text=True)
    assert "NO_PUBKEY" in refused.stderr or "not signed" in refused.stderr, refused.stderr
