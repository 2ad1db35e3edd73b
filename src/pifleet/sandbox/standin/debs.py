"""Build the stand-in's .deb packages with `dpkg-deb --build`.

For each Kubernetes version: `kubeadm`, `kubelet` and `kubectl`; once for all versions:
`kubernetes-cni` and `kube-standin-lib` (the node programs: the top-level `kube_standin`
package, installed under the same name). Each program's launcher says which Kubernetes version
it is, so a node can run kubeadm 1.34 beside kubelet 1.33 in the middle of an upgrade, as real
nodes do. Everything depends only on Debian bookworm packages: python3, python3-cryptography,
python3-yaml, iproute2, and for kubectl Debian's real `kubernetes-client`, for the CNI plugins
Debian's `containernetworking-plugins`.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path


def _node_source() -> Path:
    """The folder of the `kube_standin` package, found without importing it: pifleet packages
    the stand-in, it never runs it (import-linter keeps it that way)."""
    spec = importlib.util.find_spec("kube_standin")
    if spec is None or spec.origin is None:
        raise RuntimeError("the kube_standin package is not installed beside pifleet")
    return Path(spec.origin).parent


LIB_DIR = "/usr/lib/kube-standin"
MAINTAINER = "pifleet sandbox <sandbox@pifleet.invalid>"
CNI_VERSION = "1.7.1"
LIB_VERSION = "1.0.0-1"
NOTE = "Sandbox stand-in built by pifleet for rehearsal and tests; it is not Kubernetes."


@dataclass
class Package:
    """One binary package: control fields, files and maintainer scripts."""

    name: str
    version: str
    depends: list[str]
    description: str
    files: dict[str, tuple[str | bytes, int]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, str] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        """`name_version_all.deb`."""
        return f"{self.name}_{self.version}_all.deb"

    def control(self) -> str:
        """The DEBIAN/control text."""
        return (f"Package: {self.name}\nVersion: {self.version}\nArchitecture: all\n"
                f"Maintainer: {MAINTAINER}\nDepends: {', '.join(self.depends)}\n"
                f"Description: {self.description}\n {NOTE}\n")


def deb_version(kube_version: str) -> str:
    """The Debian version of a Kubernetes version, in pkgs.k8s.io's `1.34.1-1.1` form."""
    return f"{kube_version}-1.1"


def _launcher(module: str, kube_version: str = "") -> str:
    """The script that runs a node program; with a version, the one it stands in for (the API
    server takes its version from its static-pod manifest instead)."""
    pin = (f"from kube_standin import paths\npaths.set_version({kube_version!r})\n"
           if kube_version else "")
    return textwrap.dedent(f"""\
        #!/usr/bin/python3
        # {NOTE}
        import sys
        sys.path.insert(0, "{LIB_DIR}")
        """) + pin + textwrap.dedent(f"""\
        from kube_standin.{module} import main
        sys.exit(main())
        """)


APISERVER_UNIT = f"""\
[Unit]
Description=API server of the sandbox Kubernetes stand-in (not Kubernetes)
ConditionPathExists=/etc/kubernetes/manifests/kube-apiserver.yaml
After=network-online.target

[Service]
ExecStart={LIB_DIR}/kube-apiserver --manifests /etc/kubernetes/manifests
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
"""

KUBELET_UNIT = """\
[Unit]
Description=kubelet: the node agent of the sandbox Kubernetes stand-in (not Kubernetes)
Wants=network-online.target
After=network-online.target containerd.service

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
"""

# Like the real package: kubelet is enabled at install and restarts every 10 s until kubeadm
# has written its configuration.
KUBELET_POSTINST = """\
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    deb-systemd-helper enable kubelet.service >/dev/null || true
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null || true
        deb-systemd-invoke restart kubelet.service >/dev/null || true
    fi
fi
"""

KUBELET_PRERM = """\
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    deb-systemd-invoke stop kubelet.service >/dev/null || true
fi
"""

KUBEADM_POSTINST = """\
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi
"""

# Debian keeps the plugins in /usr/lib/cni; Kubernetes looks in /opt/cni/bin.
CNI_POSTINST = """\
#!/bin/sh
set -e
mkdir -p /opt/cni/bin
for plugin in /usr/lib/cni/*; do
    [ -e "$plugin" ] || continue
    ln -sf "$plugin" "/opt/cni/bin/$(basename "$plugin")"
done
"""

CNI_POSTRM = """\
#!/bin/sh
set -e
if [ "$1" = remove ] || [ "$1" = purge ]; then
    for link in /opt/cni/bin/*; do
        case "$(readlink "$link" 2>/dev/null)" in /usr/lib/cni/*) rm -f "$link";; esac
    done
fi
"""


def shared() -> list[Package]:
    """The packages every version uses: the node programs and the CNI plugins."""
    lib_files: dict[str, tuple[str | bytes, int]] = {
        f"{LIB_DIR}/kube_standin/{src.name}": (src.read_text(), 0o644)
        for src in sorted(_node_source().glob("*.py"))}
    lib_files[f"{LIB_DIR}/kube-apiserver"] = (_launcher("apiserver"), 0o755)
    return [
        Package("kube-standin-lib", LIB_VERSION, ["python3 (>= 3.11)", "python3-cryptography",
                                                  "python3-yaml", "iproute2"],
                "programs shared by the sandbox kubeadm and kubelet stand-ins", lib_files),
        Package("kubernetes-cni", deb_version(CNI_VERSION), ["containernetworking-plugins"],
                "CNI plugins for the sandbox stand-in, from Debian, linked into /opt/cni/bin",
                {"/usr/share/doc/kubernetes-cni/README.standin": (
                    "The plugins are Debian's containernetworking-plugins.\n", 0o644)},
                scripts={"postinst": CNI_POSTINST, "postrm": CNI_POSTRM}),
    ]


def packages(kube_version: str) -> list[Package]:
    """The packages of one Kubernetes version (e.g. `1.34.1`)."""
    v = deb_version(kube_version)
    lib = f"kube-standin-lib (>= {LIB_VERSION})"
    return [
        Package("kubeadm", v, [lib, "kubelet", "kubectl"],
                "sandbox stand-in for kubeadm, the cluster bootstrap tool",
                {"/usr/bin/kubeadm": (_launcher("kubeadm", kube_version), 0o755),
                 "/lib/systemd/system/kube-apiserver-standin.service": (APISERVER_UNIT, 0o644)},
                scripts={"postinst": KUBEADM_POSTINST}),
        Package("kubelet", v, [lib, "kubernetes-cni (>= 1.2.0)", "iptables", "mount"],
                "sandbox stand-in for the kubelet, the node agent",
                {"/usr/bin/kubelet": (_launcher("kubelet", kube_version), 0o755),
                 "/lib/systemd/system/kubelet.service": (KUBELET_UNIT, 0o644)},
                scripts={"postinst": KUBELET_POSTINST, "prerm": KUBELET_PRERM}),
        Package("kubectl", v, ["kubernetes-client"],
                "sandbox stand-in for kubectl: installs Debian's real kubectl",
                {"/usr/share/doc/kubectl/README.standin": (
                    "/usr/bin/kubectl comes from Debian's kubernetes-client package.\n", 0o644)}),
    ]


def build(package: Package, work: Path, out_dir: Path) -> Path:
    """Lay out `package` under `work` and build it into `out_dir` with dpkg-deb."""
    root = work / f"{package.name}_{package.version}"
    if root.exists():
        shutil.rmtree(root)
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(package.control())
    for name, text in package.scripts.items():
        script = root / "DEBIAN" / name
        script.write_text(text)
        script.chmod(0o755)
    for dest, (content, mode) in package.files.items():
        path = root / dest.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        path.chmod(mode)
    for dest, target in package.links.items():
        path = root / dest.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    for d in [root, *root.rglob("*")]:
        if d.is_dir():
            d.chmod(0o755)
    out_dir.mkdir(parents=True, exist_ok=True)
    deb = out_dir / package.filename
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
                   check=True, capture_output=True)
    return deb
