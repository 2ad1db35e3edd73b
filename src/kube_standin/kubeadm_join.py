"""`kubeadm join`: token discovery with CA pinning, TLS bootstrap, the kubelet."""

from __future__ import annotations

import argparse
import base64
import ipaddress
import os
import re
import sys
import time

import yaml

from . import pki, preflight, services
from .client import Client, ClientError
from .jws import verify_detached_jws
from .kubeadm_common import (
    Fail,
    default_address,
    kubelet_ports,
    node_name,
    run_preflight,
    wait_for,
    write_kubelet_config,
)
from .paths import BANNER, p, write_private, write_public


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
    wait_for(f"node {name} to register", lambda: kubelet.get(f"/api/v1/nodes/{name}"), 120)
    print(f"""
This node has joined the cluster:
* Certificate signing request was sent to apiserver and a response was received.
* The Kubelet was informed of the new secure connection details.
({BANNER})

Run 'kubectl get nodes' on the control-plane to see this node join the cluster.
""")
