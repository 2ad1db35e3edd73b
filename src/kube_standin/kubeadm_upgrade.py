"""`kubeadm upgrade plan|apply|node`, one minor at a time, as kubeadm words its refusals.

The control plane's version is the image tag in its static-pod manifests: `apply` renews the
certificates, rewrites the manifests with the new tag (keeping a backup), and waits for the
kubelet to restart the API server service, which then reports the new version. It updates the
kubeadm-config ConfigMap and the kube-proxy DaemonSet's image. The kubelets keep their version
until their package is upgraded and restarted, as on a real node. The stand-in looks no
versions up online: the newest it knows is kubeadm's own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import sys
import time
from typing import Any

import yaml

from . import kubeadm_certs, preflight
from .client import Client, ClientError
from .kubeadm_common import Fail, admin_client, run_preflight
from .kubeadm_init import control_plane_image
from .paths import BANNER, git_version, p, write_private
from .services import APISERVER_MANIFESTS, MANIFESTS

Version = tuple[int, int, int]
# As kubeadm's version policy: one minor up (or down) at a time. The kubelet may be three minors
# older than the control plane (the version skew policy since 1.28).
UPGRADE_SKEW = 1
DOWNGRADE_SKEW = 1
KUBELET_SKEW = 3
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def parse(text: str) -> Version | None:
    """`v1.34.1` or `1.34.1` as numbers; None if it is not a released version."""
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", text.strip())
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def show(version: Version) -> str:
    """The `v1.34.1` form."""
    return "v{}.{}.{}".format(*version)


def _kubeadm_version() -> Version:
    own = parse(git_version())
    assert own is not None
    return own


def _read_config(client: Client, phase: str = "upgrade/config") -> dict[str, Any]:
    print(f'[{phase}] Reading configuration from the "kubeadm-config" ConfigMap in namespace '
          '"kube-system"...')
    print(f"[{phase}] Use 'kubeadm init phase upload-config --config your-config-file' to "
          "re-upload it.")
    try:
        cm = client.get("/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
    except ClientError as err:
        raise Fail(f'[{phase}] FATAL: failed to get config map: {err.message}') from None
    return dict(yaml.safe_load(cm["data"]["ClusterConfiguration"]))


def _cluster_version(client: Client) -> Version:
    info = client.get("/version")
    version = parse(str(info.get("gitVersion", "")))
    if version is None:
        raise Fail(f"[upgrade/versions] FATAL: Unable to fetch cluster version: couldn't parse "
                   f"cluster version {info.get('gitVersion')!r}")
    return version


def _nodes(client: Client) -> list[dict[str, Any]]:
    return list(client.get("/api/v1/nodes")["items"])


def _kubelet_versions(nodes: list[dict[str, Any]]) -> dict[str, str]:
    return {n["metadata"]["name"]: str(((n.get("status") or {}).get("nodeInfo") or {}).get(
        "kubeletVersion", "")) for n in nodes}


def _health(client: Client, ignore: list[str]) -> list[dict[str, Any]]:
    """The cluster health checks apply and plan run first; returns the nodes."""
    print("[upgrade] Running cluster health checks")
    try:
        client.get("/readyz")
    except ClientError as err:
        raise Fail(f"[upgrade/health] FATAL: the API server is not healthy: {err.message}") \
            from None
    nodes = _nodes(client)
    not_ready = sorted(n["metadata"]["name"] for n in nodes
                       if CONTROL_PLANE_LABEL in (n["metadata"].get("labels") or {})
                       and not any(c.get("type") == "Ready" and c.get("status") == "True"
                                   for c in (n.get("status") or {}).get("conditions") or []))
    checks = [preflight.Check("ControlPlaneNodesReady", lambda: (
        f"there are NotReady control-planes in the cluster: [{' '.join(not_ready)}]"
        if not_ready else None))]
    wanted = {i.strip().lower() for item in ignore for i in item.split(",") if i.strip()}
    errors = preflight.run(checks, wanted)
    if errors:
        raise Fail("[upgrade/health] FATAL: [preflight] Some fatal errors occurred:\n" +
                   "\n".join(errors) + "\n[preflight] If you know what you are doing, you can "
                   "make a check non-fatal with `--ignore-preflight-errors=...`")
    return nodes


def policy(target: Version, cluster: Version, kubeadm: Version,
           kubelets: dict[str, str]) -> tuple[list[str], list[str]]:
    """kubeadm's version policy: (fatal errors, errors --force may skip), in its words."""
    new = show(target)
    fatal, skippable = [], []
    if target[1] > cluster[1] + UPGRADE_SKEW:
        fatal.append(f'Specified version to upgrade to "{new}" is too high; kubeadm can '
                     f"upgrade only {UPGRADE_SKEW} minor version at a time")
    if target[1] < cluster[1] - DOWNGRADE_SKEW:
        fatal.append(f'Specified version to downgrade to "{new}" is too low; kubeadm can '
                     f"downgrade only {DOWNGRADE_SKEW} minor version at a time")
    if kubeadm < target:
        if target[1] > kubeadm[1]:
            fatal.append(f'Specified version to upgrade to "{new}" is at least one minor '
                         f"release higher than the kubeadm minor release ({target[1]} > "
                         f"{kubeadm[1]}). Such an upgrade is not supported")
        else:
            skippable.append(f'Specified version to upgrade to "{new}" is higher than the '
                             f'kubeadm version "{show(kubeadm)}". Upgrade kubeadm first using '
                             "the tool you used to install kubeadm")
    if kubeadm[:2] > target[:2]:
        skippable.append(f"Kubeadm version {show(kubeadm)} can only be used to upgrade to "
                         f"Kubernetes version {kubeadm[0]}.{kubeadm[1]}")
    old = sorted({v for v in kubelets.values()
                  if (kv := parse(v)) is not None and target[1] > kv[1] + KUBELET_SKEW})
    if old:
        skippable.append("There are kubelets in this cluster that are too old that have these "
                         f"versions [{' '.join(old)}]")
    return fatal, skippable


def _format(errors: list[str]) -> str:
    return "".join(f"\t- {e}\n" for e in errors)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _images(client: Client) -> dict[str, str]:
    """Current tags of the addons kubeadm manages."""
    tags = {}
    for name, path in (("kube-proxy", "daemonsets/kube-proxy"),
                       ("CoreDNS", "deployments/coredns")):
        try:
            obj = client.get(f"/apis/apps/v1/namespaces/kube-system/{path}")
            image = obj["spec"]["template"]["spec"]["containers"][0]["image"]
            tags[name] = image.rsplit(":", 1)[-1]
        except (ClientError, KeyError, IndexError):
            tags[name] = ""
    return tags


def plan(args: argparse.Namespace) -> None:
    """`kubeadm upgrade plan [version]`: what apply would do, nothing changed."""
    client = admin_client(args.kubeconfig)
    print("[preflight] Running pre-flight checks.")
    _read_config(client)
    nodes = _health(client, args.ignore_preflight_errors)
    print("[upgrade] Fetching available versions to upgrade to")
    cluster, kubeadm = _cluster_version(client), _kubeadm_version()
    print(f"[upgrade/versions] Cluster version: {show(cluster)}")
    print(f"[upgrade/versions] kubeadm version: {show(kubeadm)}")
    if args.version:
        target = parse(args.version)
        if target is None:
            raise Fail(f'[upgrade/versions] FATAL: unable to parse version "{args.version}"')
    else:
        print(f"[upgrade/versions] {BANNER}: no versions are looked up online; the latest "
              "stable version is taken to be kubeadm's own")
        target = kubeadm
    print(f"[upgrade/versions] Target version: {show(target)}")
    print(f"[upgrade/versions] Latest version in the v{cluster[0]}.{cluster[1]} series: "
          f"{show(max(cluster, kubeadm) if kubeadm[:2] == cluster[:2] else cluster)}")
    print()
    if target <= cluster:
        print("Awesome, you're up-to-date! Enjoy!")
        return
    kubelets = _kubelet_versions(nodes)
    rows: list[tuple[str, ...]] = [("COMPONENT", "NODE", "CURRENT", "TARGET")]
    rows += [("kubelet", name, version, show(target)) for name, version in sorted(
        kubelets.items())]
    print("Components that must be upgraded manually after you have upgraded the control plane "
          "with 'kubeadm upgrade apply':")
    print(_table(rows))
    print()
    series = target[:2] == cluster[:2]
    print(f"Upgrade to the latest version in the v{cluster[0]}.{cluster[1]} series:" if series
          else "Upgrade to the latest stable version:")
    print()
    planes = [n["metadata"]["name"] for n in nodes
              if CONTROL_PLANE_LABEL in (n["metadata"].get("labels") or {})] or [""]
    tags = _images(client)
    rows = [("COMPONENT", "NODE", "CURRENT", "TARGET")]
    for component in ("kube-apiserver", "kube-controller-manager"):
        rows += [(component, node, show(cluster), show(target)) for node in planes]
    rows.append(("kube-proxy", "", tags["kube-proxy"], show(target)))
    rows.append(("CoreDNS", "", tags["CoreDNS"], tags["CoreDNS"]))
    print(_table(rows))
    print()
    print("You can now apply the upgrade by executing the following command:")
    print()
    print(f"\tkubeadm upgrade apply {show(target)}")
    print()
    if target > kubeadm:
        print(f"Note: Before you can perform this upgrade, you have to update kubeadm to "
              f"{show(target)}.")
        print()
    print("_" * 69)
    print()
    print(f"({BANNER}: there is no etcd and no kube-scheduler to upgrade)")


def _confirm(args: argparse.Namespace) -> None:
    if args.yes or args.force:
        return
    print("[upgrade] Are you sure you want to proceed? [y/N]: ", end="", flush=True)
    answer = sys.stdin.readline() if not sys.stdin.closed else ""
    if answer.strip().lower() not in ("y", "yes"):
        raise Fail("won't proceed; the user didn't answer (Y|y) in order to continue")


def _renew_certificates() -> None:
    ca = kubeadm_certs.pki.Pair(p("/etc/kubernetes/pki/ca.crt").read_bytes(),
                                p("/etc/kubernetes/pki/ca.key").read_bytes())
    for cert in kubeadm_certs.CERTS:
        if cert.exists():
            print(f"[upgrade/staticpods] Renewing {cert.name} certificate")
            kubeadm_certs.renew_one(cert, ca)


def _new_manifests(target: Version) -> dict[str, str]:
    """The static-pod manifests with the target version's images; unchanged ones left out."""
    changed = {}
    for name in APISERVER_MANIFESTS:
        path = p(f"{MANIFESTS}/{name}")
        if not path.exists():
            raise Fail(f"[upgrade/staticpods] FATAL: the manifest for {name.removesuffix('.yaml')}"
                       f" is missing: {MANIFESTS}/{name}")
        pod = yaml.safe_load(path.read_text())
        component = pod["metadata"]["name"]
        pod["spec"]["containers"][0]["image"] = control_plane_image(component, show(target))
        text = yaml.safe_dump(pod, sort_keys=False)
        if text == path.read_text():
            print(f"[upgrade/staticpods] Current and new manifests of {component} are equal, "
                  "skipping upgrade")
        else:
            changed[name] = text
    return changed


def _upgrade_static_pods(client: Client, target: Version) -> None:
    """Write the new manifests (old ones backed up) and wait for the kubelet to restart the
    API server service on them; put the old ones back if it does not come up."""
    changed = _new_manifests(target)
    if not changed:
        return
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d-%H-%M-%S")
    backup = p(f"/etc/kubernetes/tmp/kubeadm-backup-manifests-{stamp}")
    backup.mkdir(parents=True, exist_ok=True)
    for name, text in changed.items():
        path = p(f"{MANIFESTS}/{name}")
        print(f'[upgrade/staticpods] Moving new manifest to "{MANIFESTS}/{name}" and backing '
              f'up old manifest to "/etc/kubernetes/tmp/{backup.name}/{name}"')
        shutil.copy2(path, backup / name)
        write_private(path, text)
    print("[upgrade/staticpods] Waiting for the kubelet to restart the component")
    timeout = float(os.environ.get("KUBE_STANDIN_UPGRADE_TIMEOUT", "300"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _cluster_version(client) == target:
                break
        except ClientError:
            pass
        time.sleep(1)
    else:
        for name in changed:
            shutil.copy2(backup / name, p(f"{MANIFESTS}/{name}"))
        raise Fail("[upgrade/apply] FATAL: couldn't upgrade control plane. kubeadm has tried to "
                   "recover everything into the earlier state. Errors faced: timed out "
                   f"waiting for the API server to report {show(target)} (is the kubelet "
                   "running on this node?)")
    for name in changed:
        print(f'[upgrade/staticpods] Component "{name.removesuffix(".yaml")}" upgraded '
              "successfully!")


def _upload_config(client: Client, config: dict[str, Any], target: Version) -> None:
    config["kubernetesVersion"] = show(target)
    print('[upload-config] Storing the configuration used in ConfigMap "kubeadm-config" in the '
          '"kube-system" Namespace')
    client.ensure("/api/v1/namespaces/kube-system/configmaps", {
        "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
        "data": {"ClusterConfiguration": yaml.safe_dump(config, sort_keys=False)}})


def _kubelet_config() -> None:
    path = p("/var/lib/kubelet/config.yaml")
    if not path.exists():
        raise Fail(f"[upgrade/kubelet-config] FATAL: failed to read {path}: no such file")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d-%H-%M-%S")
    backup = p(f"/etc/kubernetes/tmp/kubeadm-kubelet-config-{stamp}")
    backup.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, backup / "config.yaml")
    print(f"[upgrade] Backing up kubelet config file to /etc/kubernetes/tmp/{backup.name}/"
          "config.yaml")
    print('[kubelet-start] Writing kubelet configuration to file "/var/lib/kubelet/config.yaml"')


def _addons(client: Client, target: Version) -> None:
    path = "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy"
    try:
        ds = client.get(path)
    except ClientError:
        ds = None
    if ds is not None:
        container = ds["spec"]["template"]["spec"]["containers"][0]
        container["image"] = control_plane_image("kube-proxy", show(target))
        client.put(path, ds)
    print("[addons] Applied essential addon: CoreDNS")
    print("[addons] Applied essential addon: kube-proxy")


def apply(args: argparse.Namespace) -> None:
    """`kubeadm upgrade apply VERSION [-y] [--force]`."""
    if not args.version:
        raise Fail("missing one or more required arguments. Required arguments: [version]")
    target = parse(args.version)
    if target is None:
        raise Fail(f'[upgrade/version] FATAL: unable to parse version "{args.version}"')
    run_preflight([preflight.privileged()], args.ignore_preflight_errors, ".")
    client = admin_client(args.kubeconfig)
    config = _read_config(client)
    nodes = _health(client, args.ignore_preflight_errors)
    print(f'[upgrade/version] You have chosen to change the cluster version to "{show(target)}"')
    cluster, kubeadm = _cluster_version(client), _kubeadm_version()
    print(f"[upgrade/versions] Cluster version: {show(cluster)}")
    print(f"[upgrade/versions] kubeadm version: {show(kubeadm)}")
    fatal, skippable = policy(target, cluster, kubeadm, _kubelet_versions(nodes))
    if fatal:
        raise Fail("[upgrade/version] FATAL: the --version argument is invalid due to these "
                   f"fatal errors:\n\n{_format(fatal)}\nPlease fix the misalignments "
                   "highlighted above and try upgrading again")
    if skippable and not args.force:
        raise Fail("[upgrade/version] FATAL: the --version argument is invalid due to these "
                   f"errors:\n\n{_format(skippable)}\nCan be bypassed if you pass the --force "
                   "flag")
    if skippable:
        print(f"[upgrade/version] Found {len(skippable)} potential version compatibility "
              f"errors but skipping since the --force flag is set: \n\n{_format(skippable)}")
    _confirm(args)
    print(f"[upgrade/prepull] {BANNER}: no images to pull")
    print(f'[upgrade/apply] Upgrading your Static Pod-hosted control plane to version '
          f'"{show(target)}" (timeout: 5m0s)...')
    if args.certificate_renewal:
        _renew_certificates()
    _upgrade_static_pods(client, target)
    print("[upgrade/control-plane] The control plane instance for this node was successfully "
          "upgraded!")
    _upload_config(client, config, target)
    _kubelet_config()
    print("[upgrade/kubelet-config] The kubelet configuration for this node was successfully "
          "upgraded!")
    print("[upgrade/bootstrap-token] Configuring bootstrap token and cluster-info RBAC rules")
    _addons(client, target)
    print()
    print(f'[upgrade] SUCCESS! A control plane node of your cluster was upgraded to '
          f'"{show(target)}".')
    print()
    print("[upgrade] Now please proceed with upgrading the rest of the nodes by following the "
          "right order.")


def node(args: argparse.Namespace) -> None:
    """`kubeadm upgrade node`: this node's part, to the cluster's configured version."""
    run_preflight([preflight.privileged()], args.ignore_preflight_errors, ".")
    control_plane = p(f"{MANIFESTS}/kube-apiserver.yaml").exists()
    kubeconfig = args.kubeconfig or ("/etc/kubernetes/admin.conf" if control_plane
                                     else "/etc/kubernetes/kubelet.conf")
    client = admin_client(kubeconfig)
    config = _read_config(client, "upgrade")
    target = parse(str(config.get("kubernetesVersion", "")))
    if target is None:
        raise Fail("[upgrade] FATAL: the kubeadm-config ConfigMap has no valid "
                   "kubernetesVersion")
    if control_plane:
        print(f'[upgrade/apply] Upgrading your Static Pod-hosted control plane instance to '
              f'version "{show(target)}"...')
        if args.certificate_renewal:
            _renew_certificates()
        _upgrade_static_pods(client, target)
        print("[upgrade] The control plane instance for this node was successfully upgraded!")
    else:
        print("[preflight] Skipping prepull. Not a control plane node.")
        print("[upgrade] Skipping phase. Not a control plane node.")
    _kubelet_config()
    print("[upgrade] The configuration for this node was successfully upgraded!")
    print("[upgrade] Now you should go ahead and upgrade the kubelet package using your package "
          "manager.")
