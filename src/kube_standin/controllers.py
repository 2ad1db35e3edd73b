"""What the controller-manager and scheduler would do, run inside the API server stand-in.

Twice a second, under the server's write lock, one round of each controller in `ROUND`: node
lifecycle (pod CIDRs, heartbeats, condition taints), namespaces (the `default` ServiceAccount
and `kube-root-ca.crt`), role aggregation, the workload controllers (`workloads`), the
scheduler, endpoints (`endpoints`), the garbage collector, legacy token Secrets, the CSR signer
and event expiry. Adding a controller is adding a function to `ROUND`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import certificates, endpoints, events, nodelifecycle, resources, workloads
from .resources import (
    CLUSTER_ROLES,
    CONFIGMAPS,
    CSRS,
    NAMESPACES,
    NODES,
    PODS,
    SECRETS,
    SERVICE_ACCOUNTS,
)
from .store import ApiError, Obj, Store, condition, now_stamp

if TYPE_CHECKING:
    from .api import ApiServer

log = logging.getLogger("kube-apiserver-standin")

NOT_READY = workloads.NOT_READY
UNREACHABLE = workloads.UNREACHABLE
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
PERIOD = 0.5
IDLE_PERIOD = 2.0
_SEEN: dict[int, set[str]] = {}  # store -> uids of the nodes the node controller has seen


def run(api: ApiServer, stop: threading.Event, grace: float) -> None:
    """Reconcile every PERIOD seconds after a change, and every IDLE_PERIOD seconds anyway
    (for what time alone changes: heartbeats expire, tolerations run out), until `stop`."""
    seen, last = -1, 0.0
    while not stop.wait(PERIOD):
        if api.store.rv == seen and time.monotonic() - last < IDLE_PERIOD:
            continue
        try:
            with api.lock:
                reconcile(api, grace)
                seen, last = api.store.rv, time.monotonic()
        except ApiError as err:  # a concurrent write won: try again next round
            log.debug("reconcile: %s", err.message)
        except Exception:
            log.exception("reconcile failed")


def reconcile(api: ApiServer, grace: float) -> None:
    """One round of every controller."""
    nodes(api.store, api.cluster_cidr, grace)
    nodelifecycle.evict(api.store)
    for controller in ROUND:
        controller(api)


def is_ready(node: Obj) -> bool:
    """Whether a node's Ready condition is True."""
    return condition(node, "Ready").get("status") == "True"


# ---- node lifecycle ----

def nodes(store: Store, cluster_cidr: str, grace: float) -> None:
    """Pod CIDRs and the unschedulable taint of cordoned nodes; then the node lifecycle
    (heartbeat expiry, not-ready/unreachable taints: `nodelifecycle`), with the node
    controller's events."""
    all_nodes, _ = store.list(NODES)
    used = {n.get("spec", {}).get("podCIDR") for n in all_nodes}
    subnets = (ipaddress.ip_network(cluster_cidr).subnets(new_prefix=24)
               if cluster_cidr else iter(()))
    was_ready = {n["metadata"]["name"]: is_ready(n) for n in all_nodes}
    for node in all_nodes:
        before = json.dumps(node, sort_keys=True)
        name = node["metadata"]["name"]
        spec = node.setdefault("spec", {})
        if cluster_cidr and not spec.get("podCIDR"):
            free = next(str(s) for s in subnets if str(s) not in used)
            used.add(free)
            spec["podCIDR"], spec["podCIDRs"] = free, [free]
        seen = _SEEN.setdefault(id(store), set())
        if node["metadata"]["uid"] not in seen:  # once per node and controller start
            seen.add(node["metadata"]["uid"])
            events.record(store, node, "Normal", "RegisteredNode",
                          f"Node {name} event: Registered Node {name} in Controller",
                          "node-controller")
        cordon = {"key": UNSCHEDULABLE, "effect": "NoSchedule"}
        taints = [t for t in spec.get("taints") or [] if t.get("key") != UNSCHEDULABLE]
        if spec.get("unschedulable"):
            taints.append(next((t for t in spec.get("taints") or []
                                if t.get("key") == UNSCHEDULABLE), cordon))
        if taints:
            spec["taints"] = taints
        else:
            spec.pop("taints", None)
        if json.dumps(node, sort_keys=True) != before:
            store.update(NODES, node, check_rv=False)
    nodelifecycle.monitor(store, grace, dt.datetime.now(dt.UTC))
    for node in store.list(NODES)[0]:
        name = node["metadata"]["name"]
        if was_ready.get(name) and not is_ready(node):
            events.record(store, node, "Normal", "NodeNotReady",
                          f"Node {name} status is now: NodeNotReady", "node-controller")


# ---- namespaces, roles ----

def namespaces(api: ApiServer) -> None:
    """Each namespace has its `default` ServiceAccount and the cluster CA in
    `kube-root-ca.crt` (the root-ca-cert-publisher)."""
    store = api.store
    ca = api.ca.cert.decode()
    for ns in store.list(NAMESPACES)[0]:
        name = ns["metadata"]["name"]
        if (ns.get("status") or {}).get("phase") == "Terminating":
            continue
        if store.find(SERVICE_ACCOUNTS, name, "default") is None:
            store.create(SERVICE_ACCOUNTS, {"metadata": {"name": "default", "namespace": name}})
        cm = store.find(CONFIGMAPS, name, "kube-root-ca.crt")
        if cm is None:
            store.create(CONFIGMAPS, {"metadata": {"name": "kube-root-ca.crt", "namespace": name,
                                                   "annotations": {
                                                       "kubernetes.io/description": (
                                                           "Contains a CA bundle that can be used "
                                                           "to verify the kube-apiserver when "
                                                           "using internal endpoints such as the "
                                                           "internal service IP or kubernetes."
                                                           "default.svc. No other usage is "
                                                           "guaranteed across distributions of "
                                                           "Kubernetes clusters.")}},
                                      "data": {"ca.crt": ca}})
        elif (cm.get("data") or {}).get("ca.crt") != ca:
            cm["data"] = {"ca.crt": ca}
            store.update(CONFIGMAPS, cm, check_rv=False)


def roles(api: ApiServer) -> None:
    """Aggregated ClusterRoles, refreshed when any ClusterRole changed."""
    from .api import aggregate_roles

    changed = api.store.changed_at(CLUSTER_ROLES)
    if getattr(api, "_aggregated_at", -1) != changed:
        aggregate_roles(api.store)
        api._aggregated_at = api.store.changed_at(CLUSTER_ROLES)  # type: ignore[attr-defined]


# ---- scheduler ----

def schedule(api: ApiServer) -> None:
    """Bind every pending pod of the default scheduler to a Ready node that fits, the least
    loaded first; say why when none does."""
    store = api.store
    all_nodes = store.list(NODES)[0]
    pods = store.list(PODS)[0]
    load = {n["metadata"]["name"]: 0 for n in all_nodes}
    for pod in pods:
        if pod["spec"].get("nodeName") in load and workloads.active(pod):
            load[pod["spec"]["nodeName"]] += 1
    for pod in pods:
        spec = pod.get("spec") or {}
        if spec.get("nodeName") or not workloads.active(pod) or \
                spec.get("schedulerName", "default-scheduler") != "default-scheduler" or \
                spec.get("schedulingGates"):
            continue
        reasons: dict[str, int] = {}
        fit = []
        for node in all_nodes:
            why = workloads.fits(spec, node)
            if why:
                reasons[why] = reasons.get(why, 0) + 1
            else:
                fit.append(node["metadata"]["name"])
        meta = pod["metadata"]
        if fit:
            chosen = min(sorted(fit), key=lambda n: load[n])
            load[chosen] += 1
            pod["spec"]["nodeName"] = chosen
            _set_scheduled(pod, {"status": "True"})
            store.update(PODS, pod, check_rv=False)
            events.record(store, pod, "Normal", "Scheduled",
                          f"Successfully assigned {meta['namespace']}/{meta['name']} to "
                          f"{chosen}", "default-scheduler")
            continue
        detail = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
        message = f"0/{len(all_nodes)} nodes are available" + (f": {detail}." if detail
                                                              else ".")
        if condition(pod, "PodScheduled").get("message") != message:
            _set_scheduled(pod, {"status": "False", "reason": "Unschedulable",
                                 "message": message})
            store.update(PODS, pod, check_rv=False)
            events.record(store, pod, "Warning", "FailedScheduling", message,
                          "default-scheduler")


def _set_scheduled(pod: Obj, fields: Obj) -> None:
    status = pod.setdefault("status", {})
    status["conditions"] = [
        *(c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"),
        {"type": "PodScheduled", **fields, "lastProbeTime": None,
         "lastTransitionTime": now_stamp()}]


# ---- garbage collection ----

def collect(api: ApiServer) -> None:
    """Delete objects all of whose owners are gone, and pods bound to a Node that is gone."""
    store = api.store
    alive: set[str] = set()
    kinds = [k for k in resources.KINDS if k.stored]
    listed = {k.key: store.list(k)[0] for k in kinds}
    for objs in listed.values():
        alive |= {o["metadata"]["uid"] for o in objs}
    node_names = {n["metadata"]["name"] for n in listed[NODES.key]}
    for kind in kinds:
        for obj in listed[kind.key]:
            meta = obj["metadata"]
            refs = meta.get("ownerReferences") or []
            gone = refs and not any(r.get("uid") in alive for r in refs)
            lost = kind is PODS and obj["spec"].get("nodeName") and \
                obj["spec"]["nodeName"] not in node_names
            if gone or lost:
                with contextlib.suppress(ApiError):
                    store.delete(kind, meta.get("namespace", "") if kind.namespaced else "",
                                 meta["name"])


# ---- tokens and certificates ----

def token_secrets(api: ApiServer) -> None:
    """Fill Secrets of type `kubernetes.io/service-account-token` with a token that lasts as
    long as the Secret and its ServiceAccount (the legacy token controller)."""
    from .auth import ISSUER
    from .jws import sign_jwt

    for secret in api.store.list(SECRETS)[0]:
        if secret.get("type") != "kubernetes.io/service-account-token" or \
                (secret.get("data") or {}).get("token"):
            continue
        meta = secret["metadata"]
        annotations = meta.get("annotations") or {}
        account = api.store.find(SERVICE_ACCOUNTS, meta["namespace"],
                                 annotations.get("kubernetes.io/service-account.name", ""))
        if account is None:
            continue
        ns, name = meta["namespace"], account["metadata"]["name"]
        claims = {"iss": ISSUER, "aud": [ISSUER], "iat": int(time.time()),
                  "sub": f"system:serviceaccount:{ns}:{name}",
                  "kubernetes.io": {"namespace": ns,
                                    "serviceaccount": {"name": name,
                                                       "uid": account["metadata"]["uid"]},
                                    "secret": {"name": meta["name"], "uid": meta["uid"]}}}
        b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
        secret["data"] = {**(secret.get("data") or {}),
                          "token": b64(sign_jwt(claims, api.sa_key).encode()),
                          "ca.crt": b64(api.ca.cert), "namespace": b64(ns.encode())}
        annotations["kubernetes.io/service-account.uid"] = account["metadata"]["uid"]
        meta["annotations"] = annotations
        api.store.update(SECRETS, secret)


def sign_certificates(api: ApiServer) -> None:
    """Approve kubelet client CSRs that may be approved and sign approved client CSRs (for
    `kubectl certificate approve`)."""
    for csr in api.store.list(CSRS)[0]:
        before = json.dumps(csr.get("status"), sort_keys=True)
        try:
            certificates.auto_approve(api, csr)
        except ApiError:
            continue
        certificates.sign(api, csr)
        if json.dumps(csr.get("status"), sort_keys=True) != before:
            api.store.update(CSRS, csr, check_rv=False)


def expire_events(api: ApiServer) -> None:
    """Events live an hour."""
    events.expire(api.store)


ROUND: list[Callable[[ApiServer], None]] = [
    namespaces, roles, workloads.deployments, workloads.replicasets, workloads.daemonsets,
    workloads.jobs, schedule, endpoints.reconcile, collect, token_secrets, sign_certificates,
    expire_events,
]
