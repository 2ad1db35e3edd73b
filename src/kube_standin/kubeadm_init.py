"""`kubeadm init`: PKI, kubeconfigs, manifests, the API server service, cluster objects."""

from __future__ import annotations

import argparse
import base64
import ipaddress
import re
import time
from pathlib import Path
from typing import Any

import yaml

from . import pki, preflight, services
from .client import Client
from .kubeadm_common import (
    ADMIN_GROUP,
    APISERVER,
    TOKEN_GROUP,
    Fail,
    bootstrap_secret,
    default_address,
    kubelet_ports,
    node_name,
    parse_duration,
    run_preflight,
    wait_for,
    write_kubelet_config,
)
from .paths import BANNER, git_version, p, test_mode, write_private, write_public

CP_LABELS = ["node-role.kubernetes.io/control-plane",
             "node.kubernetes.io/exclude-from-external-load-balancers"]

CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def check_version(wanted: str) -> str:
    """--kubernetes-version: this kubeadm deploys its own minor (or one older), never newer.
    Returns the control-plane version to deploy, `v1.34.1` style."""
    if not wanted or wanted in ("stable", "latest"):
        return git_version()
    m = re.fullmatch(r"(?:stable-|latest-)?v?(\d+)\.(\d+)(?:\.(\d+))?", wanted)
    if not m:
        raise Fail(f'couldn\'t parse Kubernetes version "{wanted}"')
    own = tuple(int(x) for x in git_version()[1:].split(".")[:2])
    asked = (int(m.group(1)), int(m.group(2)))
    if asked > own:
        raise Fail(f"this version of kubeadm only supports deploying clusters with the control "
                   f"plane version <= {git_version()}. Current version: {wanted}")
    if asked < (own[0], own[1] - 1):
        raise Fail(f"this version of kubeadm only supports deploying clusters with the control "
                   f"plane version >= v{own[0]}.{own[1] - 1}.0. Current version: {wanted}")
    if m.group(3) is None:  # a bare minor: its latest is known offline only for our own
        return git_version() if asked == own else f"v{asked[0]}.{asked[1]}.0"
    return f"v{asked[0]}.{asked[1]}.{m.group(3)}"


def control_plane_image(component: str, kube_version: str) -> str:
    """The image kubeadm names for a control-plane component (the stand-in pulls none)."""
    return f"registry.k8s.io/{component}:{kube_version}"


def _write_manifests(args: argparse.Namespace, address: str, kube_version: str) -> None:
    pki_dir = "/etc/kubernetes/pki"
    apiserver = [
        "kube-apiserver", f"--advertise-address={address}", "--allow-privileged=true",
        "--authorization-mode=Node,RBAC", f"--client-ca-file={p(pki_dir)}/ca.crt",
        "--enable-bootstrap-token-auth=true", f"--secure-port={args.apiserver_bind_port}",
        f"--service-account-key-file={p(pki_dir)}/sa.pub",
        f"--service-account-signing-key-file={p(pki_dir)}/sa.key",
        f"--service-cluster-ip-range={args.service_cidr}",
        f"--tls-cert-file={p(pki_dir)}/apiserver.crt",
        f"--tls-private-key-file={p(pki_dir)}/apiserver.key",
        f"--kubelet-client-certificate={p(pki_dir)}/apiserver-kubelet-client.crt",
        f"--kubelet-client-key={p(pki_dir)}/apiserver-kubelet-client.key",
        f"--state-file={p('/var/lib/etcd')}/standin-state.json",
    ]
    if test_mode():
        apiserver.append("--bind-address=127.0.0.1")
    manager = ["kube-controller-manager", "--allocate-node-cidrs=" + (
        "true" if args.pod_network_cidr else "false"),
        f"--cluster-signing-cert-file={p(pki_dir)}/ca.crt",
        f"--cluster-signing-key-file={p(pki_dir)}/ca.key",
        f"--service-cluster-ip-range={args.service_cidr}"]
    if args.pod_network_cidr:
        manager.append(f"--cluster-cidr={args.pod_network_cidr}")
    for name, command in (("kube-apiserver", apiserver), ("kube-controller-manager", manager)):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": "kube-system",
            "labels": {"component": name, "tier": "control-plane"},
            "annotations": {"kube-standin": f"{BANNER}: run by the {APISERVER} service"}},
            "spec": {"hostNetwork": True, "priorityClassName": "system-node-critical",
                     "containers": [{"name": name, "command": command,
                                     "image": control_plane_image(name, kube_version)}]}}
        write_private(p(f"/etc/kubernetes/manifests/{name}.yaml"),
                      yaml.safe_dump(pod, sort_keys=False))


def _cluster_info(server: str, ca: bytes) -> dict[str, Any]:
    kubeconfig = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "preferences": {}, "users": None,
        "contexts": None, "current-context": "",
        "clusters": [{"name": "", "cluster": {
            "certificate-authority-data": base64.b64encode(ca).decode(), "server": server}}]},
        sort_keys=False)
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cluster-info", "namespace": "kube-public"},
            "data": {"kubeconfig": kubeconfig}}


def _rbac(client: Client) -> None:
    """The RBAC objects kubeadm creates so that bootstrap tokens and admins work."""
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    role_ref = lambda kind, name: {"apiGroup": "rbac.authorization.k8s.io",  # noqa: E731
                                   "kind": kind, "name": name}
    group = lambda name: {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",  # noqa: E731
                          "name": name}
    client.ensure(f"{rbac}/clusterrolebindings", {
        "metadata": {"name": "kubeadm:cluster-admins"},
        "roleRef": role_ref("ClusterRole", "cluster-admin"), "subjects": [group(ADMIN_GROUP)]})
    client.ensure(f"{rbac}/clusterroles", {
        "metadata": {"name": "kubeadm:get-nodes"},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]})
    client.ensure(f"{rbac}/clusterrolebindings", {
        "metadata": {"name": "kubeadm:get-nodes"},
        "roleRef": role_ref("ClusterRole", "kubeadm:get-nodes"),
        "subjects": [group(TOKEN_GROUP)]})
    client.ensure(f"{rbac}/clusterroles", {
        "metadata": {"name": "system:node-bootstrapper"},
        "rules": [{"apiGroups": ["certificates.k8s.io"],
                   "resources": ["certificatesigningrequests"],
                   "verbs": ["create", "get", "list", "watch"]}]})
    client.ensure(f"{rbac}/clusterrolebindings", {
        "metadata": {"name": "kubeadm:kubelet-bootstrap"},
        "roleRef": role_ref("ClusterRole", "system:node-bootstrapper"),
        "subjects": [group(TOKEN_GROUP)]})
    # What lets the controller-manager approve kubelet client CSRs: from the bootstrap token
    # (joining) and from a node renewing its own certificate.
    client.ensure(f"{rbac}/clusterrolebindings", {
        "metadata": {"name": "kubeadm:node-autoapprove-bootstrap"},
        "roleRef": role_ref("ClusterRole", "system:certificates.k8s.io:"
                                           "certificatesigningrequests:nodeclient"),
        "subjects": [group(TOKEN_GROUP)]})
    client.ensure(f"{rbac}/clusterrolebindings", {
        "metadata": {"name": "kubeadm:node-autoapprove-certificate-rotation"},
        "roleRef": role_ref("ClusterRole", "system:certificates.k8s.io:"
                                           "certificatesigningrequests:selfnodeclient"),
        "subjects": [group("system:nodes")]})
    client.ensure(f"{rbac}/namespaces/kube-system/roles", {
        "metadata": {"name": "kubeadm:nodes-kubeadm-config", "namespace": "kube-system"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
                   "resourceNames": ["kubeadm-config", "kubelet-config"]}]})
    client.ensure(f"{rbac}/namespaces/kube-system/rolebindings", {
        "metadata": {"name": "kubeadm:nodes-kubeadm-config", "namespace": "kube-system"},
        "roleRef": role_ref("Role", "kubeadm:nodes-kubeadm-config"),
        "subjects": [group(TOKEN_GROUP), group("system:nodes")]})
    client.ensure(f"{rbac}/namespaces/kube-public/roles", {
        "metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo",
                     "namespace": "kube-public"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
                   "resourceNames": ["cluster-info"]}]})
    client.ensure(f"{rbac}/namespaces/kube-public/rolebindings", {
        "metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo",
                     "namespace": "kube-public"},
        "roleRef": role_ref("Role", "kubeadm:bootstrap-signer-clusterinfo"),
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                      "name": "system:anonymous"}]})


def _addons(client: Client, dns_ip: str, kube_version: str) -> None:
    """CoreDNS and kube-proxy, as objects the stand-in kubelets then 'run'."""
    images = "registry.k8s.io"
    client.ensure("/api/v1/namespaces/kube-system/serviceaccounts",
                  {"metadata": {"name": "coredns", "namespace": "kube-system"}})
    client.ensure("/apis/apps/v1/namespaces/kube-system/deployments", {
        "metadata": {"name": "coredns", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                 "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}}, "spec": {
                     "serviceAccountName": "coredns",
                     "priorityClassName": "system-cluster-critical",
                     "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                     {"key": "node-role.kubernetes.io/control-plane",
                                      "effect": "NoSchedule"}],
                     "containers": [{"name": "coredns",
                                     "image": f"{images}/coredns/coredns:v1.12.1",
                                     "args": ["-conf", "/etc/coredns/Corefile"]}]}}}})
    client.ensure("/api/v1/namespaces/kube-system/services", {
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns"}},
        "spec": {"clusterIP": dns_ip, "selector": {"k8s-app": "kube-dns"},
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}})
    client.ensure("/api/v1/namespaces/kube-system/serviceaccounts",
                  {"metadata": {"name": "kube-proxy", "namespace": "kube-system"}})
    client.ensure("/apis/apps/v1/namespaces/kube-system/daemonsets", {
        "metadata": {"name": "kube-proxy", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-proxy"}},
        "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                 "template": {"metadata": {"labels": {"k8s-app": "kube-proxy"}}, "spec": {
                     "hostNetwork": True, "serviceAccountName": "kube-proxy",
                     "priorityClassName": "system-node-critical",
                     "tolerations": [{"operator": "Exists"}],
                     "nodeSelector": {"kubernetes.io/os": "linux"},
                     "containers": [{"name": "kube-proxy",
                                     "image": control_plane_image("kube-proxy",
                                                                  kube_version),
                                     "command": ["/usr/local/bin/kube-proxy"]}]}}}})


def init(args: argparse.Namespace) -> None:
    """`kubeadm init`."""
    kube_version = check_version(args.kubernetes_version)
    print(f"[init] Using Kubernetes version: {kube_version}")
    print(f"[init] This is the {BANNER}: no control-plane containers are run")
    port = args.apiserver_bind_port
    kubelet_port, _ = kubelet_ports()
    run_preflight(preflight.for_init(port, kubelet_port), args.ignore_preflight_errors)
    address = args.apiserver_advertise_address or default_address()
    name = node_name(args.node_name)
    endpoint = args.control_plane_endpoint or f"{address}:{port}"
    if ":" not in endpoint:
        endpoint = f"{endpoint}:{port}"
    server = f"https://{endpoint}"
    service_net = ipaddress.ip_network(args.service_cidr.split(",")[0])
    kube_ip, dns_ip = str(service_net[1]), str(service_net[10])

    pki_dir = p("/etc/kubernetes/pki")
    print('[certs] Using certificateDir folder "/etc/kubernetes/pki"')
    print('[certs] Generating "ca" certificate and key')
    ca = pki.make_ca()
    write_public(pki_dir / "ca.crt", ca.cert)
    write_private(pki_dir / "ca.key", ca.key)
    dns = ["kubernetes", "kubernetes.default", "kubernetes.default.svc",
           "kubernetes.default.svc.cluster.local", name]
    endpoint_host = endpoint.rsplit(":", 1)[0]
    ips = [kube_ip, address]
    try:
        ipaddress.ip_address(endpoint_host)
        if endpoint_host not in ips:
            ips.append(endpoint_host)
    except ValueError:
        dns.append(endpoint_host)
    print('[certs] Generating "apiserver" certificate and key')
    print(f"[certs] apiserver serving cert is signed for DNS names [{' '.join(dns)}] "
          f"and IPs [{' '.join(ips)}]")
    serving = pki.issue(ca, "kube-apiserver", dns=dns, ips=ips, server=True)
    write_public(pki_dir / "apiserver.crt", serving.cert)
    write_private(pki_dir / "apiserver.key", serving.key)
    print('[certs] Generating "apiserver-kubelet-client" certificate and key')
    kubelet_client = pki.issue(ca, "kube-apiserver-kubelet-client", orgs=[ADMIN_GROUP],
                               client=True)
    write_public(pki_dir / "apiserver-kubelet-client.crt", kubelet_client.cert)
    write_private(pki_dir / "apiserver-kubelet-client.key", kubelet_client.key)
    print('[certs] Generating "sa" key and public key')
    sa = pki.new_key()
    write_private(pki_dir / "sa.key", pki.key_pem(sa))
    write_public(pki_dir / "sa.pub", pki.public_pem(sa))

    conf = p("/etc/kubernetes")
    print('[kubeconfig] Using kubeconfig folder "/etc/kubernetes"')
    for fname, user, orgs in (("admin.conf", "kubernetes-admin", [ADMIN_GROUP]),
                              ("super-admin.conf", "kubernetes-super-admin", ["system:masters"]),
                              ("kubelet.conf", f"system:node:{name}", ["system:nodes"])):
        print(f'[kubeconfig] Writing "{fname}" kubeconfig file')
        cert = pki.issue(ca, user, orgs=orgs, client=True)
        write_private(conf / fname, pki.kubeconfig(server, ca.cert, user, cert=cert.cert,
                                                   key=cert.key))
    print('[control-plane] Using manifest folder "/etc/kubernetes/manifests"')
    print('[control-plane] Creating static Pod manifest for "kube-apiserver"')
    print('[control-plane] Creating static Pod manifest for "kube-controller-manager"')
    _write_manifests(args, address, kube_version)
    p("/var/lib/etcd").mkdir(parents=True, exist_ok=True, mode=0o700)
    write_kubelet_config(name, address, dns_ip)
    print("[kubelet-start] Starting the kubelet")
    services.start_apiserver()
    services.start("kubelet")
    print('[wait-control-plane] Waiting for the kubelet to boot up the control plane as static '
          'Pods from directory "/etc/kubernetes/manifests"')
    started = time.monotonic()
    local = Client(server, ca.cert, *_creds(conf / "super-admin.conf"))
    wait_for("the API server", lambda: local.get("/readyz") is not None, 60)
    print(f"[api-check] The API server is healthy after {time.monotonic() - started:.3f}s")

    _rbac(local)
    print('[upload-config] Storing the configuration used in ConfigMap "kubeadm-config" in the '
          '"kube-system" Namespace')
    cluster_config = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
                      "clusterName": "kubernetes", "controlPlaneEndpoint": endpoint,
                      "kubernetesVersion": kube_version, "certificatesDir": "/etc/kubernetes/pki",
                      "networking": {"dnsDomain": "cluster.local",
                                     "serviceSubnet": args.service_cidr,
                                     **({"podSubnet": args.pod_network_cidr}
                                        if args.pod_network_cidr else {})}}
    local.ensure("/api/v1/namespaces/kube-system/configmaps", {
        "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
        "data": {"ClusterConfiguration": yaml.safe_dump(cluster_config, sort_keys=False)}})
    local.ensure("/api/v1/namespaces/kube-system/configmaps", {
        "metadata": {"name": "kubelet-config", "namespace": "kube-system"},
        "data": {"kubelet": p("/var/lib/kubelet/config.yaml").read_text()}})
    print(f"[mark-control-plane] Marking the node {name} as control-plane by adding the labels: "
          f"[{' '.join(CP_LABELS)}]")
    print(f"[mark-control-plane] Marking the node {name} as control-plane by adding the taints "
          "[node-role.kubernetes.io/control-plane:NoSchedule]")
    node = wait_for(f"node {name} to register", lambda: local.get(f"/api/v1/nodes/{name}"), 120)
    taints = [t for t in node["spec"].get("taints") or [] if t.get("key") != CP_TAINT["key"]]
    local.merge_patch(f"/api/v1/nodes/{name}", {
        "metadata": {"labels": dict.fromkeys(CP_LABELS, "")},
        "spec": {"taints": [*taints, CP_TAINT]}})

    token = args.token or pki.new_token()
    print(f"[bootstrap-token] Using token: {token}")
    print("[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to get nodes, "
          "post CSRs and have certificates approved automatically")
    local.ensure("/api/v1/namespaces/kube-system/secrets",
                 bootstrap_secret(token, parse_duration(args.token_ttl),
                                  "The default bootstrap token generated by 'kubeadm init'."))
    local.ensure("/api/v1/namespaces/kube-public/configmaps", _cluster_info(server, ca.cert))
    _addons(local, dns_ip, kube_version)
    print("[addons] Applied essential addon: CoreDNS")
    print("[addons] Applied essential addon: kube-proxy")
    print(f"""
Your Kubernetes control-plane has initialized successfully!
({BANNER})

To start using your cluster, you need to run the following as a regular user:

  mkdir -p $HOME/.kube
  sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config
  sudo chown $(id -u):$(id -g) $HOME/.kube/config

Alternatively, if you are the root user, you can run:

  export KUBECONFIG=/etc/kubernetes/admin.conf

You should now deploy a pod network to the cluster.
Run "kubectl apply -f [podnetwork].yaml" with one of the options listed at:
  https://kubernetes.io/docs/concepts/cluster-administration/addons/

Then you can join any number of worker nodes by running the following on each as root:

kubeadm join {endpoint} --token {token} \\
\t--discovery-token-ca-cert-hash {pki.ca_hash(ca.cert)} """)


def _creds(path: Path) -> tuple[bytes, bytes]:
    kc = pki.read_kubeconfig(path.read_text())
    return kc.cert, kc.key
