"""How the kubelet stand-in works out a network plugin's CNI config install from a pod spec."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kube_standin import cni
from manifests import FLANNEL_INSTALL_CONF, FLANNEL_LIKE

CONFLIST = json.dumps({"name": "cbr0", "cniVersion": "0.3.1",
                       "plugins": [{"type": "flannel"}, {"type": "portmap"}]})
CONF = json.dumps({"name": "mynet", "cniVersion": "1.0.0", "type": "bridge"})
NET_CONF = json.dumps({"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}})
CONFIGMAPS = {
    ("net", "cfg"): {"data": {"cni-conf.json": CONFLIST, "net-conf.json": NET_CONF}},
    ("net", "plain"): {"data": {"bridge.conf": CONF}},
    ("net", "binary"): {"binaryData": {"10-bin.conflist": base64.b64encode(
        CONFLIST.encode()).decode()}},
    ("net", "not-cni"): {"data": {"net-conf.json": NET_CONF}},
}


def fetch(namespace: str, name: str) -> dict[str, Any] | None:
    return CONFIGMAPS.get((namespace, name))


def pod(container: dict[str, Any], volumes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "net"},
            "spec": {"initContainers": [dict(container, name="install")],
                     "containers": [{"name": "main", "image": "x"}], "volumes": volumes}}


CFG = {"name": "cfg", "configMap": {"name": "cfg"}}
CNI = {"name": "cni", "hostPath": {"path": "/etc/cni/net.d"}}
CFG_MOUNT = {"name": "cfg", "mountPath": "/etc/kube-flannel/"}
CNI_MOUNT = {"name": "cni", "mountPath": "/etc/cni/net.d"}

CASES = {
    "install-conf SRC DST": (
        {"command": ["/opt/bin/install-conf"],
         "args": ["/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d/10-flannel.conflist"],
         "volumeMounts": [CNI_MOUNT, CFG_MOUNT]}, [CNI, CFG],
        "/etc/cni/net.d/10-flannel.conflist", CONFLIST, 0o644),
    "cp -f SRC DST": (
        {"command": ["cp"], "args": ["-f", "/etc/kube-flannel/cni-conf.json",
                                     "/etc/cni/net.d/10-flannel.conflist"],
         "volumeMounts": [CNI_MOUNT, CFG_MOUNT]}, [CNI, CFG],
        "/etc/cni/net.d/10-flannel.conflist", CONFLIST, 0o644),
    "a shell line into the directory": (
        {"command": ["sh", "-c"], "args": ["set -e; cp /etc/kube-flannel/cni-conf.json "
                                           "/etc/cni/net.d/"],
         "volumeMounts": [CNI_MOUNT, CFG_MOUNT]}, [CNI, CFG],
        "/etc/cni/net.d/cni-conf.json", CONFLIST, 0o644),
    "cp into the directory": (
        {"command": ["cp", "/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d/"],
         "volumeMounts": [CNI_MOUNT, CFG_MOUNT]}, [CNI, CFG],
        "/etc/cni/net.d/cni-conf.json", CONFLIST, 0o644),
    "flags, a parent host directory and renamed items": (
        {"command": ["/install", "--src=/config/flannel.conflist",
                     "--dest=/host/etc/cni/net.d/10-flannel.conflist"],
         "volumeMounts": [{"name": "etc-cni", "mountPath": "/host/etc/cni"},
                          {"name": "cfg", "mountPath": "/config"}]},
        [{"name": "etc-cni", "hostPath": {"path": "/etc/cni"}},
         {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 0o600, "items": [
             {"key": "cni-conf.json", "path": "flannel.conflist"}]}}],
        "/etc/cni/net.d/10-flannel.conflist", CONFLIST, 0o600),
    "a subPath mount of one key": (
        {"command": ["install-conf", "/etc/flannel-cni.json", "/net.d/10-f.conflist"],
         "volumeMounts": [{"name": "cni", "mountPath": "/net.d"},
                          {"name": "cfg", "mountPath": "/etc/flannel-cni.json",
                           "subPath": "cni-conf.json"}]}, [CNI, CFG],
        "/etc/cni/net.d/10-f.conflist", CONFLIST, 0o644),
    "a projected volume with binary data": (
        {"command": ["cp", "/cfg/10-bin.conflist", "/etc/cni/net.d/10-bin.conflist"],
         "volumeMounts": [CNI_MOUNT, {"name": "proj", "mountPath": "/cfg"}]},
        [CNI, {"name": "proj", "projected": {"sources": [{"configMap": {"name": "binary"}}]}}],
        "/etc/cni/net.d/10-bin.conflist", CONFLIST, 0o644),
    "a script naming no paths installs the one config it sees": (
        {"command": ["/install-cni.sh"],
         "volumeMounts": [CNI_MOUNT, {"name": "plain", "mountPath": "/cfg"}]},
        [CNI, {"name": "plain", "configMap": {"name": "plain"}}],
        "/etc/cni/net.d/10-mynet.conf", CONF, 0o644),
    "the plugin binary copy installs nothing": (
        {"command": ["cp"], "args": ["-f", "/flannel", "/opt/cni/bin/flannel"],
         "volumeMounts": [{"name": "bin", "mountPath": "/opt/cni/bin"}]},
        [{"name": "bin", "hostPath": {"path": "/opt/cni/bin"}}], None, None, None),
    "a ConfigMap without a CNI config installs nothing": (
        {"command": ["cp", "/cfg/net-conf.json", "/etc/cni/net.d/10-x.conflist"],
         "volumeMounts": [CNI_MOUNT, {"name": "nc", "mountPath": "/cfg"}]},
        [CNI, {"name": "nc", "configMap": {"name": "not-cni"}}], None, None, None),
    "a missing ConfigMap installs nothing": (
        {"command": ["cp", "/cfg/a.conflist", "/etc/cni/net.d/a.conflist"],
         "volumeMounts": [CNI_MOUNT, {"name": "gone", "mountPath": "/cfg"}]},
        [CNI, {"name": "gone", "configMap": {"name": "gone", "optional": True}}],
        None, None, None),
    "a copy elsewhere on the host installs nothing": (
        {"command": ["cp", "/etc/kube-flannel/cni-conf.json", "/host/etc/motd"],
         "volumeMounts": [{"name": "root", "mountPath": "/host"}, CFG_MOUNT]},
        [{"name": "root", "hostPath": {"path": "/"}}, CFG], None, None, None),
}


@pytest.mark.parametrize("case", CASES)
def test_installs_from_the_pod_spec(case: str) -> None:
    container, volumes, path, data, mode = CASES[case]
    found = cni.installs(pod(container, volumes), fetch)
    if path is None or data is None:
        assert found == []
    else:
        assert [(f.container, f.host_path, f.data, f.mode) for f in found] == [
            ("install", path, data.encode(), mode)]


@pytest.mark.parametrize("manifest", [FLANNEL_INSTALL_CONF, FLANNEL_LIKE],
                         ids=["install-conf", "cp"])
def test_both_flannel_forms_install_their_config(manifest: str) -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all(manifest)}
    cm = docs["ConfigMap"]
    ds = docs["DaemonSet"]
    daemon_pod = {"metadata": {"name": "f", "namespace": cm["metadata"]["namespace"]},
                  "spec": ds["spec"]["template"]["spec"]}
    found = cni.installs(daemon_pod, lambda ns, name: cm if name == cm["metadata"]["name"]
                         else None)
    assert [(f.container, f.host_path) for f in found] == [
        ("install-cni", "/etc/cni/net.d/10-flannel.conflist")]
    assert found[0].data == cm["data"]["cni-conf.json"].encode()


def test_network_ready_needs_a_loadable_config(tmp_path: Path) -> None:
    net = tmp_path / "net.d"
    assert not cni.network_ready(net)
    net.mkdir()
    (net / "README").write_text(CONFLIST)
    (net / "00-broken.conflist").write_text("{not json")
    (net / "05-empty.conflist").write_text(json.dumps({"name": "x", "plugins": []}))
    assert not cni.network_ready(net)
    (net / "10-flannel.conflist").write_text(CONFLIST)
    assert cni.network_ready(net)
