"""The node lifecycle and taint-eviction controllers, as the controller-manager runs them.

- A node whose kubelet stops posting status for `--node-monitor-grace-period` gets its
  conditions set to Unknown ("Kubelet stopped posting node status.").
- A node that is not Ready is tainted `node.kubernetes.io/not-ready` (Ready False) or
  `node.kubernetes.io/unreachable` (Ready Unknown), with effect NoSchedule and with effect
  NoExecute (stamped with `timeAdded`); the taints go when the node is Ready again.
- When a node stops being Ready, its pods' Ready condition is set to False.
- A pod on a node with a NoExecute taint it does not tolerate is evicted at once; one that
  tolerates it for `tolerationSeconds` is evicted that long after the taint was added; one that
  tolerates it without a limit (DaemonSet pods) stays.
- The API server's DefaultTolerationSeconds admission gives every new pod that has no toleration
  of its own for them `not-ready` and `unreachable` NoExecute tolerations of 300 s
  (`--default-not-ready-toleration-seconds`, `--default-unreachable-toleration-seconds`).

Eviction deletes the pod at once: the real one stays Terminating until its kubelet is back or
someone force-deletes it, which the stand-in's store (no graceful deletion) cannot show.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable

from . import resources
from .store import Obj, Store

log = logging.getLogger("kube-apiserver-standin")
NODES = resources.must("", "v1", "nodes")
PODS = resources.must("", "v1", "pods")

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def _stamp(now: dt.datetime) -> str:
    return now.strftime(STAMP)


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp, STAMP).replace(tzinfo=dt.UTC)


def _condition(obj: Obj, kind: str) -> Obj:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return {}


# ---- admission: DefaultTolerationSeconds ----

def _tolerates_key(tolerations: Iterable[Obj], key: str) -> bool:
    return any(t.get("key", "") in ("", key) and t.get("effect", "") in ("", "NoExecute")
               for t in tolerations)


# (not-ready, unreachable) seconds: the API server's flags set them at start (`configure`).
_defaults = {NOT_READY: DEFAULT_TOLERATION_SECONDS, UNREACHABLE: DEFAULT_TOLERATION_SECONDS}


def configure(not_ready_seconds: int, unreachable_seconds: int) -> None:
    """Set the seconds of the default tolerations (`--default-*-toleration-seconds`)."""
    _defaults.update({NOT_READY: int(not_ready_seconds), UNREACHABLE: int(unreachable_seconds)})


def default_tolerations(spec: Obj) -> None:
    """Add the not-ready/unreachable NoExecute tolerations a new pod's spec lacks."""
    tolerations = list(spec.get("tolerations") or [])
    for key, seconds in _defaults.items():
        if not _tolerates_key(tolerations, key):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": int(seconds)})
    spec["tolerations"] = tolerations


# ---- node lifecycle ----

def monitor(store: Store, grace: float, now: dt.datetime | None = None) -> None:
    """Heartbeat expiry, the not-ready/unreachable taints, and pods marked not Ready."""
    now = now or dt.datetime.now(dt.UTC)
    for node in store.list(NODES)[0]:
        before = json.dumps(node, sort_keys=True)
        was_ready = _condition(node, "Ready").get("status") == "True"
        ready = _condition(node, "Ready")
        beat = ready.get("lastHeartbeatTime")
        if ready and ready.get("status") != "Unknown" and beat and \
                (now - _parse(beat)).total_seconds() > grace:
            for c in node["status"]["conditions"]:
                c.update(status="Unknown", reason="NodeStatusUnknown",
                         message="Kubelet stopped posting node status.",
                         lastTransitionTime=_stamp(now))
        status = _condition(node, "Ready").get("status")
        spec = node.setdefault("spec", {})
        old = {(t.get("key"), t.get("effect")): t for t in spec.get("taints") or []}
        taints = [t for t in spec.get("taints") or [] if t.get("key") not in
                  (NOT_READY, UNREACHABLE)]
        key = {"False": NOT_READY, "Unknown": UNREACHABLE}.get(str(status))
        if key:
            taints.append({"key": key, "effect": "NoSchedule"})
            taints.append(old.get((key, "NoExecute")) or
                          {"key": key, "effect": "NoExecute", "timeAdded": _stamp(now)})
        if taints:
            spec["taints"] = taints
        else:
            spec.pop("taints", None)
        if json.dumps(node, sort_keys=True) != before:
            store.update(NODES, node, check_rv=False)
            if was_ready and status != "True":
                mark_pods_not_ready(store, node["metadata"]["name"], now)


def mark_pods_not_ready(store: Store, node_name: str, now: dt.datetime) -> None:
    """Set the Ready condition of every pod on the node to False."""
    for pod in store.list(PODS, fields=f"spec.nodeName={node_name}")[0]:
        conditions = (pod.get("status") or {}).get("conditions") or []
        changed = False
        for c in conditions:
            if c.get("type") == "Ready" and c.get("status") != "False":
                c.update(status="False", lastTransitionTime=_stamp(now))
                changed = True
        if changed:
            store.update(PODS, pod, check_rv=False)


# ---- taint eviction ----

def _matches(toleration: Obj, taint: Obj) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return toleration.get("key") == taint.get("key") and \
        toleration.get("value", "") == taint.get("value", "")


def eviction_time(pod: Obj, taints: list[Obj]) -> dt.datetime | None:
    """When the pod must go because of the node's NoExecute taints: a time (possibly now or
    past), or None when it tolerates them for ever."""
    spec = dict(pod.get("spec") or {})
    # A pod stored without admission (a mirror pod) is judged as if it had the defaults.
    default_tolerations(spec)
    due: dt.datetime | None = None
    for taint in taints:
        if taint.get("effect") != "NoExecute":
            continue
        added = _parse(taint["timeAdded"]) if taint.get("timeAdded") else dt.datetime.min \
            .replace(tzinfo=dt.UTC)
        matching = [t for t in spec["tolerations"] if _matches(t, taint)]
        if not matching:
            return added
        # As the real taint manager: the shortest limit counts, tolerations without one are
        # for ever.
        limits = [int(t["tolerationSeconds"]) for t in matching
                  if t.get("tolerationSeconds") is not None]
        if limits:
            when = added + dt.timedelta(seconds=max(0, min(limits)))
            due = when if due is None else min(due, when)
    return due


def evict(store: Store, now: dt.datetime | None = None) -> list[str]:
    """Delete the pods whose NoExecute taints are due; returns `namespace/name` of each."""
    now = now or dt.datetime.now(dt.UTC)
    evicted = []
    for node in store.list(NODES)[0]:
        taints = [t for t in (node.get("spec") or {}).get("taints") or []
                  if t.get("effect") == "NoExecute"]
        if not taints:
            continue
        for pod in store.list(PODS, fields=f"spec.nodeName={node['metadata']['name']}")[0]:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            due = eviction_time(pod, taints)
            if due is None or due > now:
                continue
            meta = pod["metadata"]
            status = pod.setdefault("status", {})
            status["conditions"] = [c for c in status.get("conditions") or []
                                    if c.get("type") != "DisruptionTarget"] + [{
                "type": "DisruptionTarget", "status": "True",
                "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint",
                "lastTransitionTime": _stamp(now)}]
            store.update(PODS, pod, check_rv=False)
            store.delete(PODS, meta["namespace"], meta["name"])
            log.info("taint eviction: deleted pod %s/%s from node %s", meta["namespace"],
                     meta["name"], node["metadata"]["name"])
            evicted.append(f"{meta['namespace']}/{meta['name']}")
    return evicted
