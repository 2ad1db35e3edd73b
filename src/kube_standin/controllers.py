"""What the controller-manager and scheduler would do, run inside the API server stand-in.

Once a second: allocate node pod CIDRs, mark silent nodes NotReady after the grace period (the
node lifecycle controller), keep one pod per eligible node for each DaemonSet, keep `replicas`
pods for each Deployment on Ready nodes (standing in for ReplicaSets and the scheduler), and
delete pods whose owner or node is gone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import logging
import threading
from typing import TYPE_CHECKING, Any

from . import nodelifecycle, resources
from .store import ApiError, Obj, Store, now_stamp, selector_match

if TYPE_CHECKING:
    from .api import ApiServer

log = logging.getLogger("kube-apiserver-standin")
NODES = resources.must("", "v1", "nodes")
PODS = resources.must("", "v1", "pods")
DAEMONSETS = resources.must("apps", "v1", "daemonsets")
DEPLOYMENTS = resources.must("apps", "v1", "deployments")

NOT_READY, UNREACHABLE = nodelifecycle.NOT_READY, nodelifecycle.UNREACHABLE
# The tolerations the real DaemonSet controller adds to every daemon pod.
DAEMON_TOLERATIONS = [
    {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute"},
    {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def run(api: ApiServer, stop: threading.Event, grace: float) -> None:
    """Reconcile every second until `stop` is set."""
    while not stop.wait(1.0):
        try:
            with api.lock:
                reconcile(api, grace)
        except ApiError as err:  # a concurrent write won: try again next round
            log.debug("reconcile: %s", err.message)
        except Exception:
            log.exception("reconcile failed")


def reconcile(api: ApiServer, grace: float) -> None:
    """One round of every controller."""
    nodes(api.store, api.cluster_cidr, grace)
    nodelifecycle.evict(api.store)
    daemonsets(api.store)
    deployments(api.store)
    orphans(api.store)
    token_secrets(api)


def _condition(obj: Obj, kind: str) -> Obj:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return {}


def is_ready(node: Obj) -> bool:
    """Whether a node's Ready condition is True."""
    return _condition(node, "Ready").get("status") == "True"


def nodes(store: Store, cluster_cidr: str, grace: float) -> None:
    """Pod CIDRs, then the node lifecycle (heartbeat expiry, taints: `nodelifecycle.py`)."""
    all_nodes, _ = store.list(NODES)
    used = {n.get("spec", {}).get("podCIDR") for n in all_nodes}
    subnets = (ipaddress.ip_network(cluster_cidr).subnets(new_prefix=24)
               if cluster_cidr else iter(()))
    now = dt.datetime.now(dt.UTC)
    for node in all_nodes:
        before = json.dumps(node, sort_keys=True)
        spec = node.setdefault("spec", {})
        if cluster_cidr and not spec.get("podCIDR"):
            free = next(str(s) for s in subnets if str(s) not in used)
            used.add(free)
            spec["podCIDR"], spec["podCIDRs"] = free, [free]
        if json.dumps(node, sort_keys=True) != before:
            store.update(NODES, node)
    nodelifecycle.monitor(store, grace, now)


def tolerates(tolerations: list[Obj], taints: list[Obj]) -> bool:
    """Whether every NoSchedule/NoExecute taint is tolerated."""
    for taint in taints:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(_tolerates(t, taint) for t in tolerations):
            return False
    return True


def _tolerates(tol: Obj, taint: Obj) -> bool:
    if tol.get("effect") and tol["effect"] != taint.get("effect"):
        return False
    if tol.get("operator") == "Exists":
        return not tol.get("key") or tol["key"] == taint.get("key")
    return tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", "")


def fits(pod_spec: Obj, node: Obj, extra_tolerations: list[Obj] | None = None) -> bool:
    """nodeSelector, required node affinity and taints: may this pod go to this node?"""
    labels = node["metadata"].get("labels") or {}
    if not selector_match({"matchLabels": pod_spec.get("nodeSelector") or {}}, labels):
        return False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or []
    if terms and not any(selector_match({"matchExpressions": t.get("matchExpressions") or []},
                                        labels) for t in terms):
        return False
    tolerations = list(pod_spec.get("tolerations") or []) + (extra_tolerations or [])
    return tolerates(tolerations, (node.get("spec") or {}).get("taints") or [])


def _owned(pods: list[Obj], owner: Obj) -> list[Obj]:
    uid = owner["metadata"]["uid"]
    return [p for p in pods if any(r.get("uid") == uid
                                   for r in p["metadata"].get("ownerReferences") or [])]


def _pod_from(owner: Obj, kind: str, name_prefix: str, labels: dict[str, str],
              node_name: str | None) -> Obj:
    template = owner["spec"].get("template") or {}
    meta = template.get("metadata") or {}
    spec = json.loads(json.dumps(template.get("spec") or {}))
    if node_name:
        spec["nodeName"] = node_name
    spec.setdefault("serviceAccountName", spec.get("serviceAccount", "default"))
    return {"metadata": {"generateName": name_prefix, "namespace": owner["metadata"]["namespace"],
                         "labels": {**(meta.get("labels") or {}), **labels},
                         "annotations": dict(meta.get("annotations") or {}),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": kind,
                                              "name": owner["metadata"]["name"],
                                              "uid": owner["metadata"]["uid"], "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": spec, "status": {"phase": "Pending"}}


def _pod_ready(pod: Obj) -> bool:
    return _condition(pod, "Ready").get("status") == "True"


def _set_status(store: Store, kind: Any, obj: Obj, status: Obj) -> None:
    if obj.get("status") != status:
        obj["status"] = status
        store.update(kind, obj, check_rv=False)


def daemonsets(store: Store) -> None:
    """One pod per eligible node, replaced when the template's generation changes."""
    all_nodes, _ = store.list(NODES)
    for ds in store.list(DAEMONSETS)[0]:
        ns, gen = ds["metadata"]["namespace"], ds["metadata"].get("generation", 1)
        spec = (ds["spec"].get("template") or {}).get("spec") or {}
        extra = list(DAEMON_TOLERATIONS)
        if spec.get("hostNetwork"):
            extra.append({"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                          "effect": "NoSchedule"})
        eligible = {n["metadata"]["name"] for n in all_nodes if fits(spec, n, extra)}
        pods = _owned(store.list(PODS, ns)[0], ds)
        placed: set[str] = set()
        for pod in pods:
            node = pod["spec"].get("nodeName")
            stale = pod["metadata"].get("labels", {}).get("pod-template-generation") != str(gen)
            if node not in eligible or node in placed or stale:
                store.delete(PODS, ns, pod["metadata"]["name"])
            else:
                placed.add(node)
        for node in sorted(eligible - placed):
            pod = _pod_from(ds, "DaemonSet", ds["metadata"]["name"] + "-",
                            {"pod-template-generation": str(gen),
                             "controller-revision-hash": _hash(ds["spec"].get("template"))},
                            node)
            pod["spec"]["tolerations"] = list(pod["spec"].get("tolerations") or []) + extra
            store.create(PODS, pod)
        pods = _owned(store.list(PODS, ns)[0], ds)
        ready = sum(1 for p in pods if _pod_ready(p))
        _set_status(store, DAEMONSETS, ds, {
            "currentNumberScheduled": len(pods), "desiredNumberScheduled": len(eligible),
            "numberMisscheduled": 0, "numberReady": ready, "numberAvailable": ready,
            "numberUnavailable": len(eligible) - ready, "updatedNumberScheduled": len(pods),
            "observedGeneration": gen})


def _hash(template: Any) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def deployments(store: Store) -> None:
    """`replicas` pods of the current template, each bound to a Ready node that fits."""
    all_nodes, _ = store.list(NODES)
    for dep in store.list(DEPLOYMENTS)[0]:
        ns = dep["metadata"]["namespace"]
        want = int(dep["spec"].get("replicas", 1))
        template_hash = _hash(dep["spec"].get("template"))
        spec = (dep["spec"].get("template") or {}).get("spec") or {}
        pods = _owned(store.list(PODS, ns)[0], dep)
        current = []
        for pod in pods:
            if pod["metadata"].get("labels", {}).get("pod-template-hash") != template_hash:
                store.delete(PODS, ns, pod["metadata"]["name"])
            else:
                current.append(pod)
        for pod in current[want:]:
            store.delete(PODS, ns, pod["metadata"]["name"])
        current = current[:want]
        candidates = [n for n in all_nodes if is_ready(n) and fits(spec, n)]
        load = {n["metadata"]["name"]: 0 for n in candidates}
        for pod in current:
            if pod["spec"].get("nodeName") in load:
                load[pod["spec"]["nodeName"]] += 1
        name = dep["metadata"]["name"]
        for _ in range(want - len(current)):
            pod = _pod_from(dep, "Deployment", f"{name}-{template_hash}-",
                            {"pod-template-hash": template_hash}, None)
            nodelifecycle.default_tolerations(pod["spec"])  # admission, as for any new pod
            current.append(store.create(PODS, pod))
        for pod in current:
            if pod["spec"].get("nodeName"):
                continue
            if load:
                node = min(sorted(load), key=lambda n: load[n])
                load[node] += 1
                pod["spec"]["nodeName"] = node
                pod["status"] = {"phase": "Pending", "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_stamp()}]}
            else:
                message = (f"0/{len(all_nodes)} nodes are available: no Ready node matches the "
                           "pod's node selector, affinity and tolerations.")
                pod["status"] = {"phase": "Pending", "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": message, "lastTransitionTime": now_stamp()}]}
            store.update(PODS, pod, check_rv=False)
        pods = _owned(store.list(PODS, ns)[0], dep)
        ready = sum(1 for p in pods if _pod_ready(p))
        available = ready >= want
        _set_status(store, DEPLOYMENTS, dep, {
            "observedGeneration": dep["metadata"].get("generation", 1), "replicas": len(pods),
            "updatedReplicas": len(pods), "readyReplicas": ready, "availableReplicas": ready,
            **({"unavailableReplicas": want - ready} if ready < want else {}),
            "conditions": [
                {"type": "Available", "status": "True" if available else "False",
                 "reason": "MinimumReplicasAvailable" if available
                 else "MinimumReplicasUnavailable",
                 "message": "Deployment has minimum availability." if available
                 else "Deployment does not have minimum availability."},
                {"type": "Progressing", "status": "True",
                 "reason": "NewReplicaSetAvailable" if available else "ReplicaSetUpdated",
                 "message": f'ReplicaSet "{name}-{template_hash}" '
                            + ("has successfully progressed." if available
                               else "is progressing.")}]})


def orphans(store: Store) -> None:
    """Garbage-collect pods whose controlling DaemonSet/Deployment or whose node is gone."""
    owners = {o["metadata"]["uid"] for o in store.list(DAEMONSETS)[0] + store.list(
        DEPLOYMENTS)[0]}
    node_names = {n["metadata"]["name"] for n in store.list(NODES)[0]}
    for pod in store.list(PODS)[0]:
        refs = [r for r in pod["metadata"].get("ownerReferences") or []
                if r.get("controller") and r.get("kind") in ("DaemonSet", "Deployment")]
        node = pod["spec"].get("nodeName")
        if (refs and refs[0].get("uid") not in owners) or (node and node not in node_names):
            store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])


def delete_namespace(store: Store, name: str) -> None:
    """Delete everything in a deleted namespace (the real one finalizes; this is at once)."""
    for kind in resources.KINDS:
        if kind.namespaced:
            for obj in store.list(kind, name)[0]:
                store.delete(kind, name, obj["metadata"]["name"])


SECRETS = resources.must("", "v1", "secrets")
SERVICE_ACCOUNTS = resources.must("", "v1", "serviceaccounts")


def token_secrets(api: ApiServer) -> None:
    """Fill Secrets of type `kubernetes.io/service-account-token` with a token that lasts as
    long as the Secret and its ServiceAccount (the legacy token controller)."""
    import base64
    import time

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
