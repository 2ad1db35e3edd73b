"""The kubeadm stand-in: init, join, token, reset and version with kubeadm's flags and files."""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from . import pki, preflight, services
from .client import Client, ClientError
from .jws import verify_detached_jws
from .paths import BANNER, git_version, p, test_mode, write_private, write_public

APISERVER = "kube-apiserver-standin"
ADMIN_GROUP = "kubeadm:cluster-admins"
TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
CP_LABELS = ["node-role.kubernetes.io/control-plane",
             "node.kubernetes.io/exclude-from-external-load-balancers"]
CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


class Fail(Exception):
    """A kubeadm error: printed as the real one prints it, exit status 1."""


def kubelet_ports() -> tuple[int, int]:
    """(port, healthzPort). Tests on a shared machine move them with environment variables."""
    if test_mode():
        return (int(os.environ.get("KUBE_STANDIN_KUBELET_PORT", "10250")),
                int(os.environ.get("KUBE_STANDIN_KUBELET_HEALTHZ_PORT", "10248")))
    return 10250, 10248


def parse_duration(text: str) -> int:
    """Seconds in a Go duration such as `24h0m0s`, `30m` or `0`."""
    if text.strip() in ("0", ""):
        return 0
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise Fail(f'invalid argument "{text}": time: invalid duration "{text}"')
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return int(sum(float(n) * scale[u] for n, u in parts))


def default_address() -> str:
    """The IPv4 address of the interface holding the default route (kubeadm's choice)."""
    try:
        routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "default"],
                                           capture_output=True, text=True, check=True).stdout)
        dev = routes[0]["dev"]
        addrs = json.loads(subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", dev],
                                          capture_output=True, text=True, check=True).stdout)
        return str(addrs[0]["addr_info"][0]["local"])
    except (OSError, subprocess.CalledProcessError, IndexError, KeyError, ValueError):
        if test_mode():
            return "127.0.0.1"
        raise Fail("unable to select an IP from default routes.") from None


def node_name(flag: str | None) -> str:
    """--node-name or the lower-cased hostname, as kubeadm does."""
    return (flag or socket.gethostname()).lower()


def run_preflight(checks: list[preflight.Check], ignore: list[str]) -> None:
    """Print `[preflight]` and fail like kubeadm when a check fails."""
    wanted = {i.strip().lower() for item in ignore for i in item.split(",") if i.strip()}
    print("[preflight] Running pre-flight checks")
    errors = preflight.run(checks, wanted)
    if errors:
        raise Fail("[preflight] Some fatal errors occurred:\n" + "\n".join(errors) +
                   "\n[preflight] If you know what you are doing, you can make a check "
                   "non-fatal with `--ignore-preflight-errors=...`")


def bootstrap_secret(token: str, ttl: int, description: str) -> dict[str, Any]:
    """The Secret kubeadm stores for a bootstrap token."""
    token_id, secret = token.split(".")
    data = {"token-id": token_id, "token-secret": secret,
            "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
            "auth-extra-groups": TOKEN_GROUP, "description": description}
    if ttl:
        data["expiration"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + ttl))
    return {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def join_command(endpoint: str, token: str, ca_cert: bytes) -> str:
    """The one-line join command `token create --print-join-command` prints."""
    return (f"kubeadm join {endpoint} --token {token} --discovery-token-ca-cert-hash "
            f"{pki.ca_hash(ca_cert)} ")


# ---- init ----

def check_version(wanted: str) -> None:
    """--kubernetes-version: this kubeadm deploys its own minor (or one older), never newer."""
    if not wanted or wanted in ("stable", "latest"):
        return
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


def _write_manifests(args: argparse.Namespace, address: str) -> None:
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
                                     "image": f"registry.k8s.io/{name}:{git_version()}"}]}}
        write_private(p(f"/etc/kubernetes/manifests/{name}.yaml"),
                      yaml.safe_dump(pod, sort_keys=False))


def write_kubelet_config(node: str, address: str, cluster_dns: str) -> None:
    """/var/lib/kubelet/config.yaml and kubeadm-flags.env, as kubeadm writes them."""
    port, healthz = kubelet_ports()
    config = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
              "authentication": {"x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"}},
              "cgroupDriver": "systemd", "clusterDNS": [cluster_dns],
              "clusterDomain": "cluster.local", "healthzBindAddress": "127.0.0.1",
              "healthzPort": healthz, "port": port, "nodeStatusUpdateFrequency": "10s",
              "rotateCertificates": True, "staticPodPath": "/etc/kubernetes/manifests"}
    print('[kubelet-start] Writing kubelet configuration to file "/var/lib/kubelet/config.yaml"')
    write_public(p("/var/lib/kubelet/config.yaml"), yaml.safe_dump(config, sort_keys=False))
    print('[kubelet-start] Writing kubelet environment file with flags to file '
          '"/var/lib/kubelet/kubeadm-flags.env"')
    write_public(p("/var/lib/kubelet/kubeadm-flags.env"),
                 f'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix://'
                 f'{preflight.CRI_SOCKET} --node-ip={address} --hostname-override={node}"\n')


def _wait(what: str, fn: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = fn()
            if result:
                return result
        except (ClientError, OSError) as exc:
            last = exc
        time.sleep(0.5)
    raise Fail(f"timed out waiting for {what}" + (f": {last}" if last else ""))


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


def _addons(client: Client, dns_ip: str) -> None:
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
                                     "image": f"{images}/kube-proxy:{git_version()}",
                                     "command": ["/usr/local/bin/kube-proxy"]}]}}}})


def init(args: argparse.Namespace) -> None:
    """`kubeadm init`."""
    check_version(args.kubernetes_version)
    print(f"[init] Using Kubernetes version: {git_version()}")
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
    import ipaddress

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
    print('[certs] Generating "sa" key and public key')
    from cryptography.hazmat.primitives import serialization

    sa = pki.new_key()
    write_private(pki_dir / "sa.key", pki.key_pem(sa))
    write_public(pki_dir / "sa.pub", sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

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
    _write_manifests(args, address)
    p("/var/lib/etcd").mkdir(parents=True, exist_ok=True, mode=0o700)
    write_kubelet_config(name, address, dns_ip)
    print("[kubelet-start] Starting the kubelet")
    services.start(APISERVER, ["--manifests", str(p("/etc/kubernetes/manifests"))])
    services.start("kubelet")
    print('[wait-control-plane] Waiting for the kubelet to boot up the control plane as static '
          'Pods from directory "/etc/kubernetes/manifests"')
    started = time.monotonic()
    admin = Client.from_kubeconfig((conf / "admin.conf").read_text())
    local = Client(server, ca.cert, *_creds(conf / "super-admin.conf"))
    _wait("the API server", lambda: local.get("/readyz") is not None, 60)
    print(f"[api-check] The API server is healthy after {time.monotonic() - started:.3f}s")

    _rbac(local)
    print('[upload-config] Storing the configuration used in ConfigMap "kubeadm-config" in the '
          '"kube-system" Namespace')
    cluster_config = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
                      "clusterName": "kubernetes", "controlPlaneEndpoint": endpoint,
                      "kubernetesVersion": git_version(), "certificatesDir": "/etc/kubernetes/pki",
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
    node = _wait(f"node {name} to register", lambda: local.get(f"/api/v1/nodes/{name}"), 120)
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
    _addons(local, dns_ip)
    print("[addons] Applied essential addon: CoreDNS")
    print("[addons] Applied essential addon: kube-proxy")
    del admin
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


# ---- join ----

def discover(endpoint: str, token: str, pins: list[str], skip_ca: bool,
             timeout: float) -> tuple[str, bytes]:
    """Token discovery: fetch cluster-info without trust, check its JWS with the token and its
    CA against the pinned hashes. Returns (server URL, CA certificate)."""
    token_id, secret = token.split(".")
    deadline = time.monotonic() + timeout
    anonymous = Client(f"https://{endpoint}", None, timeout=10)
    while True:
        problem = ""
        try:
            cm = anonymous.get("/api/v1/namespaces/kube-public/configmaps/cluster-info")
            data = cm.get("data") or {}
            payload = data.get("kubeconfig", "")
            signature = data.get(f"jws-kubeconfig-{token_id}")
            if signature is None:
                problem = (f'token id "{token_id}" is invalid for this cluster or it has '
                           "expired. Use \"kubeadm token create\" on the control-plane node to "
                           "create a new valid token")
            elif not verify_detached_jws(signature, payload, token_id, secret):
                problem = ("failed to verify JWS signature of received cluster info object, "
                           "can't trust this API Server")
            else:
                info = yaml.safe_load(payload)
                cluster = info["clusters"][0]["cluster"]
                ca = base64.b64decode(cluster["certificate-authority-data"])
                actual = pki.ca_hash(ca)
                if not skip_ca and actual not in pins:
                    raise Fail("couldn't validate the identity of the API Server: cluster CA "
                               f'found in cluster-info ConfigMap is invalid: none of the public '
                               f'keys "{actual}" are pinned')
                return str(cluster["server"]), ca
        except ClientError as err:
            problem = f'failed to request the cluster-info ConfigMap: {err.message}'
        if time.monotonic() >= deadline:
            raise Fail(f"couldn't validate the identity of the API Server: {problem}")
        print(f"[discovery] Failed to connect to API Server \"{endpoint}\": {problem}",
              file=sys.stderr)
        time.sleep(5)


def join(args: argparse.Namespace) -> None:
    """`kubeadm join`."""
    if not args.endpoint:
        raise Fail("discovery: Invalid value: \"\": bootstrapToken or file must be set")
    token = args.discovery_token or args.token
    if not token or not re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token):
        raise Fail(f'the bootstrap token "{token}" was not of the form '
                   '"\\\\A([a-z0-9]{6})\\\\.([a-z0-9]{16})\\\\z"')
    skip_ca = args.discovery_token_unsafe_skip_ca_verification
    if not args.discovery_token_ca_cert_hash and not skip_ca:
        raise Fail("discovery.bootstrapToken: Invalid value: \"\": using token-based discovery "
                   "without caCertHashes can be unsafe. Set unsafeSkipCAVerification as true "
                   "in your kubeadm config file or pass --discovery-token-unsafe-skip-ca-"
                   "verification flag to continue")
    kubelet_port, _ = kubelet_ports()
    run_preflight(preflight.for_join(kubelet_port), args.ignore_preflight_errors)
    print(f"[join] This is the {BANNER}")
    timeout = float(os.environ.get("KUBE_STANDIN_DISCOVERY_TIMEOUT", "300"))
    server, ca = discover(args.endpoint, token, args.discovery_token_ca_cert_hash,
                          args.discovery_token_unsafe_skip_ca_verification, timeout)
    name = node_name(args.node_name)
    print('[preflight] Reading configuration from the "kubeadm-config" ConfigMap in namespace '
          '"kube-system"...')
    boot = Client(server, ca, token=token)
    config = yaml.safe_load(boot.get("/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
                            ["data"]["ClusterConfiguration"])
    try:
        node = boot.get(f"/api/v1/nodes/{name}")
        ready = [c for c in node.get("status", {}).get("conditions") or []
                 if c.get("type") == "Ready" and c.get("status") == "True"]
        if ready:
            raise Fail(f'a Node with name "{name}" and status "Ready" already exists in the '
                       "cluster. You must delete the existing Node or change the name of this "
                       "new joining Node")
    except ClientError as err:
        if err.code != 404:
            raise Fail(f"cannot get Node {name}: {err.message}") from None
    csr_pem, key_pem = pki.make_csr(f"system:node:{name}", ["system:nodes"])
    csr = boot.post("/apis/certificates.k8s.io/v1/certificatesigningrequests", {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"generateName": "csr-"},
        "spec": {"request": base64.b64encode(csr_pem).decode(),
                 "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                 "usages": ["digital signature", "client auth"]}})
    cert = base64.b64decode(csr["status"]["certificate"])
    import ipaddress

    service_net = ipaddress.ip_network(config["networking"]["serviceSubnet"].split(",")[0])
    address = args.apiserver_advertise_address or default_address()
    write_public(p("/etc/kubernetes/pki/ca.crt"), ca)
    write_private(p("/etc/kubernetes/kubelet.conf"),
                  pki.kubeconfig(server, ca, f"system:node:{name}", cert=cert, key=key_pem))
    p("/etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)
    write_kubelet_config(name, address, str(service_net[10]))
    print("[kubelet-start] Starting the kubelet")
    services.start("kubelet")
    print("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap")
    kubelet = Client(server, ca, cert, key_pem)
    _wait(f"node {name} to register", lambda: kubelet.get(f"/api/v1/nodes/{name}"), 120)
    print(f"""
This node has joined the cluster:
* Certificate signing request was sent to apiserver and a response was received.
* The Kubelet was informed of the new secure connection details.
({BANNER})

Run 'kubectl get nodes' on the control-plane to see this node join the cluster.
""")


# ---- token, reset, version ----

def _admin(args: argparse.Namespace) -> Client:
    path = Path(args.kubeconfig) if args.kubeconfig else p("/etc/kubernetes/admin.conf")
    if not path.exists():
        raise Fail(f"failed to load admin kubeconfig: open {path}: no such file or directory")
    return Client.from_kubeconfig(path.read_text())


def token_create(args: argparse.Namespace) -> None:
    """`kubeadm token create [TOKEN] [--ttl D] [--print-join-command]`."""
    client = _admin(args)
    token = args.token or pki.new_token()
    if not re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token):
        raise Fail(f'the bootstrap token "{token}" was not of the form '
                   '"\\\\A([a-z0-9]{6})\\\\.([a-z0-9]{16})\\\\z"')
    client.post("/api/v1/namespaces/kube-system/secrets",
                bootstrap_secret(token, parse_duration(args.ttl), args.description or ""))
    if not args.print_join_command:
        print(token)
        return
    info = client.get("/api/v1/namespaces/kube-public/configmaps/cluster-info")
    cluster = yaml.safe_load(info["data"]["kubeconfig"])["clusters"][0]["cluster"]
    endpoint = cluster["server"].split("://", 1)[1]
    print(join_command(endpoint, token, base64.b64decode(cluster["certificate-authority-data"])))


def token_list(args: argparse.Namespace) -> None:
    """`kubeadm token list`."""
    client = _admin(args)
    items = client.get("/api/v1/namespaces/kube-system/secrets?fieldSelector=type%3D"
                       "bootstrap.kubernetes.io%2Ftoken")["items"]
    rows = [("TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS")]
    for s in items:
        d = {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
        expires = d.get("expiration", "")
        ttl = "<forever>"
        if expires:
            left = time.mktime(time.strptime(expires, "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(
                time.gmtime())
            if left <= 0:
                continue
            ttl = f"{int(left // 3600)}h" if left >= 3600 else f"{int(left // 60)}m"
        usages = ",".join(u.removeprefix("usage-bootstrap-") for u in sorted(d)
                          if u.startswith("usage-bootstrap-") and d[u] == "true")
        rows.append((f"{d['token-id']}.{d['token-secret']}", ttl, expires or "<never>", usages,
                     d.get("description", "") or "<none>", d.get("auth-extra-groups", "")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def token_delete(args: argparse.Namespace) -> None:
    """`kubeadm token delete ID...`."""
    client = _admin(args)
    for tok in args.ids:
        token_id = tok.split(".")[0]
        try:
            client.delete(f"/api/v1/namespaces/kube-system/secrets/bootstrap-token-{token_id}")
        except ClientError as err:
            raise Fail(f'failed to delete bootstrap token "{token_id}": {err.message}') from None
        print(f'bootstrap token "{token_id}" deleted')


def reset(args: argparse.Namespace) -> None:
    """`kubeadm reset [-f]`: undo init/join on this node; leave CNI config and kubeconfigs."""
    if not args.force:
        print("[reset] WARNING: Changes made to this host by 'kubeadm init' or 'kubeadm join' "
              "will be reverted.")
        answer = input("[reset] Are you sure you want to proceed? [y/N]: ")
        if answer.strip().lower() not in ("y", "yes"):
            raise Fail("aborted reset operation")
    print("[preflight] Running pre-flight checks")
    if os.geteuid() != 0 and not test_mode():
        raise Fail("[preflight] Some fatal errors occurred:\n\t[ERROR IsPrivilegedUser]: user "
                   "is not running as root")
    print("[reset] Stopping the kubelet service")
    services.stop("kubelet")
    if p("/etc/kubernetes/manifests/kube-apiserver.yaml").exists():
        print("[reset] Stopping the control-plane services of the stand-in")
        services.disable(APISERVER)
    dirs = ["/etc/kubernetes/manifests", "/var/lib/kubelet", "/etc/kubernetes/pki"]
    etcd = p("/var/lib/etcd")
    if etcd.exists():
        dirs.insert(0, "/var/lib/etcd")
    print(f"[reset] Deleting contents of directories: [{' '.join(dirs)}]")
    for d in dirs:
        path = p(d)
        if path.is_dir():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    files = [f"/etc/kubernetes/{n}" for n in ("admin.conf", "super-admin.conf", "kubelet.conf",
                                               "bootstrap-kubelet.conf",
                                               "controller-manager.conf", "scheduler.conf")]
    print(f"[reset] Deleting files: [{' '.join(files)}]")
    for f in files:
        p(f).unlink(missing_ok=True)
    print("""
The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d

The reset process does not reset or clean up iptables rules or IPVS tables.
If you wish to reset iptables, you must do so manually by using the "iptables" command.

The reset process does not clean your kubeconfig files and you must remove them manually.
Please, check the contents of the $HOME/.kube/config file.""")


def version(args: argparse.Namespace) -> None:
    """`kubeadm version [-o short|json|yaml]`."""
    v = git_version()
    major, minor = v[1:].split(".")[:2]
    info = {"major": major, "minor": minor, "gitVersion": v, "gitCommit": "sandbox-standin",
            "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z",
            "goVersion": "none", "compiler": "python3", "platform": "linux/sandbox-standin"}
    if args.output == "short":
        print(v)
    elif args.output == "json":
        print(json.dumps({"clientVersion": info}, indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump({"clientVersion": info}, sort_keys=False), end="")
    else:
        fields = ", ".join(f'{k[0].upper()}{k[1:]}:"{val}"' for k, val in info.items())
        print(f"kubeadm version: &version.Info{{{fields}}} ({BANNER})")


def parser() -> argparse.ArgumentParser:
    """kubeadm's command line (the part pifleet uses)."""
    ap = argparse.ArgumentParser(prog="kubeadm", description=f"kubeadm ({BANNER})")
    ap.add_argument("-v", "--v", default="0")
    sub = ap.add_subparsers(dest="command", required=True)

    i = sub.add_parser("init")
    i.add_argument("--pod-network-cidr", default="")
    i.add_argument("--service-cidr", default="10.96.0.0/12")
    i.add_argument("--apiserver-advertise-address", default="")
    i.add_argument("--apiserver-bind-port", type=int, default=6443)
    i.add_argument("--control-plane-endpoint", default="")
    i.add_argument("--token", default="")
    i.add_argument("--token-ttl", default="24h0m0s")
    i.add_argument("--kubernetes-version", default="")
    i.add_argument("--node-name", default="")
    i.add_argument("--ignore-preflight-errors", action="append", default=[])
    i.add_argument("--cri-socket", default="")
    i.add_argument("--upload-certs", action="store_true")
    i.set_defaults(fn=init)

    j = sub.add_parser("join")
    j.add_argument("endpoint", nargs="?", default="")
    j.add_argument("--token", default="")
    j.add_argument("--discovery-token", default="")
    j.add_argument("--discovery-token-ca-cert-hash", action="append", default=[])
    j.add_argument("--discovery-token-unsafe-skip-ca-verification", action="store_true")
    j.add_argument("--node-name", default="")
    j.add_argument("--apiserver-advertise-address", default="")
    j.add_argument("--ignore-preflight-errors", action="append", default=[])
    j.add_argument("--cri-socket", default="")
    j.set_defaults(fn=join)

    t = sub.add_parser("token")
    t.add_argument("--kubeconfig", default="")
    tsub = t.add_subparsers(dest="token_command", required=True)
    tc = tsub.add_parser("create")
    tc.add_argument("token", nargs="?", default="")
    tc.add_argument("--ttl", default="24h0m0s")
    tc.add_argument("--print-join-command", action="store_true")
    tc.add_argument("--description", default="")
    tc.add_argument("--kubeconfig", default="")
    tc.set_defaults(fn=token_create)
    tl = tsub.add_parser("list")
    tl.add_argument("--kubeconfig", default="")
    tl.set_defaults(fn=token_list)
    td = tsub.add_parser("delete")
    td.add_argument("ids", nargs="+")
    td.add_argument("--kubeconfig", default="")
    td.set_defaults(fn=token_delete)

    r = sub.add_parser("reset")
    r.add_argument("-f", "--force", action="store_true")
    r.add_argument("--cri-socket", default="")
    r.add_argument("--ignore-preflight-errors", action="append", default=[])
    r.set_defaults(fn=reset)

    v = sub.add_parser("version")
    v.add_argument("-o", "--output", default="", choices=["", "short", "json", "yaml"])
    v.set_defaults(fn=version)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of `/usr/bin/kubeadm`."""
    args = parser().parse_args(argv)
    try:
        args.fn(args)
    except Fail as err:
        text = str(err)
        phase = "preflight" if "[preflight]" in text or "identity" in text else "kubeadm"
        print(f"error execution phase {phase}: {text}" if phase == "preflight" else
              f"error: {text}", file=sys.stderr)
        print("To see the stack trace of this error execute with --v=5 or higher",
              file=sys.stderr)
        return 1
    except ClientError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
