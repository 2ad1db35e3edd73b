"""The flannel CNI, as a list of objects built from the pinned facts (facts.md sections 4, 9).

Same shape as upstream's `kube-flannel.yml` of the pinned release, written here: namespace
`kube-flannel`, RBAC for the subnet manager, ConfigMap `kube-flannel-cfg` (`cni-conf.json`,
`net-conf.json` with the fleet's pod CIDR and the vxlan backend), DaemonSet `kube-flannel-ds`
whose init containers install the CNI plugin and config on each node.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence

from pifleet.errors import BadInput
from pifleet.kube import objects as o
from pifleet.kube.pins import FLANNEL_CNI_PLUGIN_IMAGE, FLANNEL_IMAGE

NAMESPACE = "kube-flannel"
CONFIGMAP = "kube-flannel-cfg"
DAEMONSET = "kube-flannel-ds"
APP = {"app": "flannel"}
_LABELS = {"tier": "node", "k8s-app": "flannel", "app": "flannel"}
# Linux interface names: up to 15 bytes, no slash, colon or whitespace. flannel also takes an
# address here; both are checked by flannel itself on the node.
_IFACE = re.compile(r"^[^\s/:]{1,15}$|^[0-9a-fA-F.:]+$")


def cni_conf() -> str:
    """The CNI network list flannel's init container installs as 10-flannel.conflist."""
    return json.dumps({
        "name": "cbr0",
        "cniVersion": "0.3.1",
        "plugins": [
            {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }, indent=2) + "\n"


def net_conf(pod_cidr: str) -> str:
    """flannel's network config: `Network` is the cluster's pod CIDR, vxlan backend."""
    return json.dumps({"Network": pod_cidr, "EnableNFTables": False,
                       "Backend": {"Type": "vxlan"}}, indent=2) + "\n"


def _checked_cidr(pod_cidr: str) -> str:
    try:
        net = ipaddress.ip_network(pod_cidr, strict=True)
    except ValueError as exc:
        raise BadInput(f"pod CIDR {pod_cidr!r} is not a network address: {exc}") from None
    if net.version != 4:
        raise BadInput(f"pod CIDR {pod_cidr}: pifleet's flannel manifest is IPv4 only")
    if net.prefixlen > 24:
        # flannel leases a /24 to each node out of Network by default.
        raise BadInput(f"pod CIDR {pod_cidr} is smaller than one node's /24 subnet")
    return str(net)


def flannel(pod_cidr: str, ifaces: Sequence[str] = ()) -> list[o.Obj]:
    """Every object of the flannel network, in the order they must be applied.

    `ifaces` become `--iface=` arguments (flannel tries them in order): needed when a Pi has
    more than one active interface (eth0 and wlan0), or flannel picks the default route's.
    """
    cidr = _checked_cidr(pod_cidr)
    for name in ifaces:
        if not _IFACE.match(name):
            raise BadInput(f"flannel interface {name!r} is not an interface name or address")
    sa = "flannel"
    return [
        o.namespace(NAMESPACE, {"k8s-app": "flannel",
                                "pod-security.kubernetes.io/enforce": "privileged"}),
        o.obj(o.RBAC, "ClusterRole", "flannel", labels={"k8s-app": "flannel"}, rules=[
            o.rule([""], ["pods"], ["get"]),
            o.rule([""], ["nodes"], ["get", "list", "watch"]),
            o.rule([""], ["nodes/status"], ["patch"]),
        ]),
        o.binding("ClusterRoleBinding", "flannel", "ClusterRole", "flannel",
                  [o.sa_subject(sa, NAMESPACE)], labels={"k8s-app": "flannel"}),
        o.service_account(sa, NAMESPACE, {"k8s-app": "flannel"}),
        o.obj("v1", "ConfigMap", CONFIGMAP, NAMESPACE, _LABELS,
              data={"cni-conf.json": cni_conf(), "net-conf.json": net_conf(cidr)}),
        o.obj("apps/v1", "DaemonSet", DAEMONSET, NAMESPACE, _LABELS, spec={
            "selector": {"matchLabels": dict(APP)},
            "template": {"metadata": {"labels": {"tier": "node", **APP}},
                         "spec": _pod_spec(sa, [f"--iface={i}" for i in ifaces])},
        }),
    ]


def _pod_spec(sa: str, iface_args: list[str]) -> o.Obj:
    host = lambda name, path, **kw: {"name": name, "hostPath": {"path": path, **kw}}  # noqa: E731
    env_field = lambda name, path: {"name": name, "valueFrom": {  # noqa: E731
        "fieldRef": {"fieldPath": path}}}
    health = {"httpGet": {"path": "/healthz", "port": "healthz"}}
    return {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}},
        "hostNetwork": True,
        "priorityClassName": "system-node-critical",
        "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
        "serviceAccountName": sa,
        "initContainers": [
            {"name": "install-cni-plugin", "image": FLANNEL_CNI_PLUGIN_IMAGE,
             "command": ["cp"], "args": ["-f", "/flannel", "/opt/cni/bin/flannel"],
             "volumeMounts": [{"name": "cni-plugin", "mountPath": "/opt/cni/bin"}]},
            # Since v0.28.6 the flannel image installs the CNI config itself (facts.md 9).
            {"name": "install-cni", "image": FLANNEL_IMAGE,
             "command": ["/opt/bin/install-conf"],
             "args": ["/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d/10-flannel.conflist"],
             "volumeMounts": [{"name": "cni", "mountPath": "/etc/cni/net.d"},
                              {"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"}]},
        ],
        "containers": [{
            "name": "kube-flannel",
            "image": FLANNEL_IMAGE,
            "command": ["/opt/bin/flanneld"],
            "args": ["--ip-masq", "--kube-subnet-mgr", "--healthz-port=8081", *iface_args],
            "ports": [{"name": "healthz", "containerPort": 8081, "protocol": "TCP"}],
            "livenessProbe": {**health, "initialDelaySeconds": 10, "periodSeconds": 30},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "healthz"},
                               "initialDelaySeconds": 5, "periodSeconds": 10},
            "resources": {"requests": {"cpu": "100m", "memory": "50Mi"}},
            "securityContext": {"privileged": False,
                                "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
            "env": [env_field("POD_NAME", "metadata.name"),
                    env_field("POD_NAMESPACE", "metadata.namespace"),
                    {"name": "EVENT_QUEUE_DEPTH", "value": "5000"},
                    {"name": "CONT_WHEN_CACHE_NOT_READY", "value": "false"}],
            "volumeMounts": [{"name": "run", "mountPath": "/run/flannel"},
                             {"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"},
                             {"name": "xtables-lock", "mountPath": "/run/xtables.lock"}],
        }],
        "volumes": [
            host("run", "/run/flannel"),
            host("cni-plugin", "/opt/cni/bin"),
            host("cni", "/etc/cni/net.d"),
            {"name": "flannel-cfg", "configMap": {"name": CONFIGMAP}},
            host("xtables-lock", "/run/xtables.lock", type="FileOrCreate"),
        ],
    }
