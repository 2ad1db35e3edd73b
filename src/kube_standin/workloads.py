"""The workload controllers: Deployments (through ReplicaSets), ReplicaSets, DaemonSets, Jobs.

As the real controller-manager, with one simplification each, said in the docstrings: a
Deployment's rolling update brings the new ReplicaSet to full size at once and scales the old
ones down when the new one is available (a 100% surge); a DaemonSet replaces all its outdated
pods together. ReplicaSet, Job and DaemonSet pods are real Pod objects that the stand-in
kubelets then run.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import json
from typing import TYPE_CHECKING, Any

from . import events, nodelifecycle, resources
from .resources import DAEMONSETS, DEPLOYMENTS, JOBS, NODES, PODS, REPLICASETS, REVISIONS
from .store import SAFE_ALPHABET, ApiError, Obj, Store, condition, now_stamp, selector_match

if TYPE_CHECKING:
    from .api import ApiServer


REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX = "deployment.kubernetes.io/max-replicas"
HASH = "pod-template-hash"
DS_HASH = "controller-revision-hash"
# Deployment annotations a ReplicaSet does not inherit.
NOT_COPIED = {"kubectl.kubernetes.io/last-applied-configuration", REVISION,
              "deployment.kubernetes.io/revision-history", DESIRED, MAX}
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


def template_hash(template: Any) -> str:
    """A short stable hash of a pod template, spelled as the real controllers spell theirs."""
    digest = int(hashlib.sha256(json.dumps(semantic(template), sort_keys=True).encode())
                 .hexdigest()[:8], 16)
    return "".join(SAFE_ALPHABET[ord(d) % len(SAFE_ALPHABET)] for d in str(digest))[:10]


def controlled_by(objs: list[Obj], owner: Obj) -> list[Obj]:
    """The objects whose controller is `owner`."""
    uid = owner["metadata"]["uid"]
    return [o for o in objs if any(r.get("uid") == uid and r.get("controller")
                                   for r in o["metadata"].get("ownerReferences") or [])]


def owner_ref(owner: Obj) -> Obj:
    """A controller reference to `owner`."""
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


def pod_ready(pod: Obj) -> bool:
    """Whether a pod's Ready condition is True."""
    return condition(pod, "Ready").get("status") == "True"


def active(pod: Obj) -> bool:
    """A pod that is neither finished nor on its way out."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def set_condition(conditions: list[Obj], kind: str, status: str, reason: str, message: str,
                  update_time: bool = False, refresh: bool = False) -> list[Obj]:
    """`conditions` with one condition set, keeping its timestamps when nothing changed
    (`refresh`: progress was made, the update time moves on anyway)."""
    now = now_stamp()
    old = next((c for c in conditions if c.get("type") == kind), None)
    new: Obj = {"type": kind, "status": status, "reason": reason, "message": message}
    if update_time:
        new["lastUpdateTime"] = now
    new["lastTransitionTime"] = now
    if old is not None:
        if old.get("status") == status:
            new["lastTransitionTime"] = old.get("lastTransitionTime", now)
        if update_time and not refresh and (old.get("status"), old.get("reason"),
                                            old.get("message")) == (status, reason, message):
            new["lastUpdateTime"] = old.get("lastUpdateTime", now)
    return [c for c in conditions if c.get("type") != kind] + [new]


def _save_status(store: Store, kind: resources.Kind, obj: Obj, status: Obj) -> None:
    if obj.get("status") != status:
        obj["status"] = status
        store.update(kind, obj, check_rv=False)


def _new_pod(owner: Obj, extra_labels: dict[str, str], name_prefix: str) -> Obj:
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    meta = template.get("metadata") or {}
    return {"metadata": {"generateName": name_prefix,
                         "namespace": owner["metadata"]["namespace"],
                         "labels": {**(meta.get("labels") or {}), **extra_labels},
                         **({"annotations": meta["annotations"]} if meta.get("annotations")
                            else {}),
                         "ownerReferences": [owner_ref(owner)]},
            "spec": template.get("spec") or {}}


def _create_pod(api: ApiServer, owner: Obj, pod: Obj, component: str) -> Obj | None:
    try:
        made = api.create(PODS, pod, owner["metadata"]["namespace"])
    except ApiError as err:
        events.record(api.store, owner, "Warning", "FailedCreate",
                      f"Error creating: {err.message}", component)
        return None
    events.record(api.store, owner, "Normal", "SuccessfulCreate",
                  f"Created pod: {made['metadata']['name']}", component)
    return made


def _delete_pod(api: ApiServer, owner: Obj, pod: Obj, component: str) -> None:
    try:
        api.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
    except ApiError:
        return
    events.record(api.store, owner, "Normal", "SuccessfulDelete",
                  f"Deleted pod: {pod['metadata']['name']}", component)


# ---- ReplicaSets ----

def _deletion_order(pod: Obj) -> tuple[int, int, int, str]:
    """Pods to delete first: unscheduled, then pending, then not ready, then the newest."""
    scheduled = bool((pod.get("spec") or {}).get("nodeName"))
    running = (pod.get("status") or {}).get("phase") == "Running"
    created = pod["metadata"].get("creationTimestamp", "")
    return (int(scheduled), int(running), int(pod_ready(pod)),
            "".join(chr(0x10FFFF - ord(c)) for c in created))


def replicasets(api: ApiServer) -> None:
    """Keep `replicas` pods of each ReplicaSet's template."""
    store = api.store
    for rs in store.list(REPLICASETS)[0]:
        ns = rs["metadata"]["namespace"]
        want = int(rs["spec"].get("replicas", 1))
        pods = [p for p in controlled_by(store.list(PODS, ns)[0], rs) if active(p)]
        if len(pods) < want:
            for _ in range(want - len(pods)):
                pod = _new_pod(rs, {}, rs["metadata"]["name"] + "-")
                made = _create_pod(api, rs, pod, "replicaset-controller")
                if made is not None:
                    pods.append(made)
        elif len(pods) > want:
            for pod in sorted(pods, key=_deletion_order)[:len(pods) - want]:
                _delete_pod(api, rs, pod, "replicaset-controller")
                pods.remove(pod)
        labels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        ready = sum(1 for p in pods if pod_ready(p))
        status: Obj = {"replicas": len(pods),
                       "fullyLabeledReplicas": sum(1 for p in pods if labels.items() <= (
                           p["metadata"].get("labels") or {}).items()),
                       "readyReplicas": ready, "availableReplicas": ready,
                       "observedGeneration": rs["metadata"].get("generation", 1)}
        _save_status(store, REPLICASETS, rs, {k: v for k, v in status.items()
                                              if v or k == "replicas"})


# ---- Deployments ----

def _absolute(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        share = int(value[:-1]) * total
        return -(-share // 100) if round_up else share // 100
    return int(value or 0)


def _revision(rs: Obj) -> int:
    return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0") or 0)


def semantic(value: Any) -> Any:
    """`value` without its nulls: how typed clients see it (`creationTimestamp: null` in a
    template that came back from a client equals no timestamp)."""
    if isinstance(value, dict):
        return {k: semantic(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def _without_hash(template: Obj) -> Obj:
    out = semantic(template)
    labels = (out.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH, None)
    return out


def _scale(api: ApiServer, dep: Obj, rs: Obj, replicas: int) -> None:
    old = int(rs["spec"].get("replicas", 0))
    if old == replicas:
        return
    rs["spec"]["replicas"] = replicas
    rs["metadata"].setdefault("annotations", {})[DESIRED] = str(dep["spec"].get("replicas", 1))
    api.store.update(REPLICASETS, rs, check_rv=False)
    way = "up" if replicas > old else "down"
    events.record(api.store, dep, "Normal", "ScalingReplicaSet",
                  f"Scaled {way} replica set {rs['metadata']['name']} from {old} to {replicas}",
                  "deployment-controller")


def deployments(api: ApiServer) -> None:
    """Each Deployment's ReplicaSets, revisions, scaling and status."""
    store = api.store
    for dep in store.list(DEPLOYMENTS)[0]:
        _deployment(api, dep)


def _deployment(api: ApiServer, dep: Obj) -> None:
    store = api.store
    ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
    spec = dep["spec"]
    want = int(spec.get("replicas", 1))
    template = spec.get("template") or {}
    sets = controlled_by(store.list(REPLICASETS, ns)[0], dep)
    new = next((rs for rs in sets if _without_hash(rs["spec"].get("template") or {}) ==
                semantic(template)), None)
    top = max((_revision(rs) for rs in sets), default=0)
    created = False
    if spec.get("paused"):
        pass
    elif new is None:
        digest = template_hash(template)
        annotations = {k: v for k, v in (dep["metadata"].get("annotations") or {}).items()
                       if k not in NOT_COPIED}
        surge = _absolute((spec.get("strategy") or {}).get("rollingUpdate", {}).get(
            "maxSurge", 0), want, True)
        rs_template = copy.deepcopy(template)
        rs_template.setdefault("metadata", {}).setdefault("labels", {})[HASH] = digest
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH] = digest
        new = store.create(REPLICASETS, {
            "metadata": {"name": f"{name}-{digest}", "namespace": ns,
                         "labels": dict(rs_template["metadata"]["labels"]),
                         "annotations": {**annotations, DESIRED: str(want),
                                         MAX: str(want + surge), REVISION: str(top + 1)},
                         "ownerReferences": [owner_ref(dep)]},
            "spec": {"replicas": 0, "minReadySeconds": spec.get("minReadySeconds", 0),
                     "selector": selector, "template": rs_template},
            "status": {"replicas": 0}})
        created = True
    else:
        # The new ReplicaSet carries the Deployment's annotations (kubectl's change-cause)
        # and the highest revision: going back to an older template renumbers it (undo).
        wanted = {k: v for k, v in (dep["metadata"].get("annotations") or {}).items()
                  if k not in NOT_COPIED}
        annotations = new["metadata"].setdefault("annotations", {})
        revision = _revision(new) if 0 < _revision(new) == top else top + 1
        if any(annotations.get(k) != v for k, v in wanted.items()) or \
                annotations.get(REVISION) != str(revision):
            annotations.update(wanted)
            annotations[REVISION] = str(revision)
            new = store.update(REPLICASETS, new, check_rv=False)
    old = [rs for rs in sets if new is None or rs["metadata"]["uid"] != new["metadata"]["uid"]]
    if new is not None:
        _roll(api, dep, new, old, want)
        revision = _revision(new)
        if (dep["metadata"].get("annotations") or {}).get(REVISION) != str(revision):
            dep["metadata"].setdefault("annotations", {})[REVISION] = str(revision)
            dep = store.update(DEPLOYMENTS, dep, check_rv=False)
    _cleanup(api, dep, [rs for rs in old if rs["spec"].get("replicas", 0) == 0])
    _deployment_status(api, dep, new, created)


def _roll(api: ApiServer, dep: Obj, new: Obj, old: list[Obj], want: int) -> None:
    strategy = (dep["spec"].get("strategy") or {}).get("type", "RollingUpdate")
    old_pods = sum(int((rs.get("status") or {}).get("replicas", 0)) for rs in old)
    if strategy == "Recreate":
        for rs in old:
            _scale(api, dep, rs, 0)
        if old_pods == 0:
            _scale(api, dep, new, want)
        return
    _scale(api, dep, new, want)
    new_available = int((new.get("status") or {}).get("availableReplicas", 0))
    if new_available >= want:
        for rs in old:
            _scale(api, dep, rs, 0)


def _cleanup(api: ApiServer, dep: Obj, idle: list[Obj]) -> None:
    keep = int(dep["spec"].get("revisionHistoryLimit", 10))
    idle = [rs for rs in idle if (rs.get("status") or {}).get("replicas", 0) == 0]
    for rs in sorted(idle, key=_revision)[:max(0, len(idle) - keep)]:
        with contextlib.suppress(ApiError):
            api.store.delete(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])


def _deployment_status(api: ApiServer, dep: Obj, new: Obj | None, created: bool) -> None:
    store = api.store
    ns, spec = dep["metadata"]["namespace"], dep["spec"]
    want = int(spec.get("replicas", 1))
    sets = controlled_by(store.list(REPLICASETS, ns)[0], dep)
    total = lambda key: sum(int((rs.get("status") or {}).get(key, 0)) for rs in sets)  # noqa
    new = next((rs for rs in sets if new is not None and rs["metadata"]["uid"] ==
                new["metadata"]["uid"]), None)
    updated = int((new.get("status") or {}).get("replicas", 0)) if new else 0
    available = total("availableReplicas")
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    unavailable_ok = _absolute(rolling.get("maxUnavailable", 0), want, False)
    conditions = list((dep.get("status") or {}).get("conditions") or [])
    if available >= want - unavailable_ok:
        conditions = set_condition(conditions, "Available", "True", "MinimumReplicasAvailable",
                                   "Deployment has minimum availability.", True)
    else:
        conditions = set_condition(conditions, "Available", "False",
                                   "MinimumReplicasUnavailable",
                                   "Deployment does not have minimum availability.", True)
    rs_name = new["metadata"]["name"] if new else ""
    done = new is not None and updated == want and total("replicas") == want and \
        int((new.get("status") or {}).get("availableReplicas", 0)) == want
    before = dep.get("status") or {}
    moved = (before.get("updatedReplicas", 0), before.get("availableReplicas", 0),
             before.get("replicas", 0)) != (updated, available, total("replicas"))
    progressing = condition(dep, "Progressing")
    if spec.get("paused"):
        conditions = set_condition(conditions, "Progressing", "Unknown", "DeploymentPaused",
                                   "Deployment is paused", True)
    elif done:
        conditions = set_condition(conditions, "Progressing", "True", "NewReplicaSetAvailable",
                                   f'ReplicaSet "{rs_name}" has successfully progressed.', True)
    elif progressing.get("reason") == "ProgressDeadlineExceeded" and not moved:
        pass
    elif not moved and _expired(progressing, int(spec.get("progressDeadlineSeconds", 600))):
        conditions = set_condition(conditions, "Progressing", "False",
                                   "ProgressDeadlineExceeded",
                                   f'ReplicaSet "{rs_name}" has timed out progressing.', True)
    else:
        reason, message = ("NewReplicaSetCreated", f'Created new replica set "{rs_name}"') \
            if created else ("ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        conditions = set_condition(conditions, "Progressing", "True", reason, message, True,
                                   refresh=moved or created)
    order = {"Available": 0, "Progressing": 1}
    conditions.sort(key=lambda c: order.get(c["type"], 2))
    status: Obj = {"observedGeneration": dep["metadata"].get("generation", 1),
                   "replicas": total("replicas"), "updatedReplicas": updated,
                   "readyReplicas": total("readyReplicas"), "availableReplicas": available,
                   "unavailableReplicas": max(0, want - available), "conditions": conditions}
    status = {k: v for k, v in status.items() if v or k in ("observedGeneration",
                                                            "conditions")}
    _save_status(store, DEPLOYMENTS, dep, status)


def _expired(progressing: Obj, deadline: int) -> bool:
    stamp = progressing.get("lastUpdateTime")
    if not stamp or progressing.get("reason") == "NewReplicaSetAvailable":
        return False
    since = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return (dt.datetime.now(dt.UTC) - since).total_seconds() > deadline


# ---- DaemonSets ----

def tolerates(tolerations: list[Obj], taints: list[Obj]) -> bool:
    """Whether every NoSchedule/NoExecute taint is tolerated."""
    return all(any(_tolerates(t, taint) for t in tolerations) for taint in taints
               if taint.get("effect") in ("NoSchedule", "NoExecute"))


def _tolerates(tol: Obj, taint: Obj) -> bool:
    if tol.get("effect") and tol["effect"] != taint.get("effect"):
        return False
    if tol.get("operator") == "Exists":
        return not tol.get("key") or tol["key"] == taint.get("key")
    return tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", "")


def fits(pod_spec: Obj, node: Obj, extra_tolerations: list[Obj] | None = None) -> str:
    """Why this pod may not go to this node ('' when it may): selector, affinity, taints."""
    labels = node["metadata"].get("labels") or {}
    if not selector_match({"matchLabels": pod_spec.get("nodeSelector") or {}}, labels):
        return "node(s) didn't match Pod's node affinity/selector"
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or []
    name = node["metadata"]["name"]
    if terms and not any(
            selector_match({"matchExpressions": t.get("matchExpressions") or []}, labels)
            and all(f.get("key") != "metadata.name" or (f.get("operator") == "In" and name in (
                f.get("values") or [])) for f in t.get("matchFields") or []) for t in terms):
        return "node(s) didn't match Pod's node affinity/selector"
    tolerations = list(pod_spec.get("tolerations") or []) + (extra_tolerations or [])
    for taint in (node.get("spec") or {}).get("taints") or []:
        if not tolerates(tolerations, [taint]):
            return f"node(s) had untolerated taint {{{taint.get('key')}: " \
                   f"{taint.get('value', '')}}}"
    return ""


def daemonsets(api: ApiServer) -> None:
    """One pod per eligible node, a ControllerRevision per template, outdated pods replaced."""
    store = api.store
    all_nodes = store.list(NODES)[0]
    for ds in store.list(DAEMONSETS)[0]:
        ns, gen = ds["metadata"]["namespace"], ds["metadata"].get("generation", 1)
        template = ds["spec"].get("template") or {}
        spec = template.get("spec") or {}
        extra = list(DAEMON_TOLERATIONS)
        if spec.get("hostNetwork"):
            extra.append({"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                          "effect": "NoSchedule"})
        eligible = {n["metadata"]["name"] for n in all_nodes if not fits(spec, n, extra)}
        digest = _revision_for(api, ds)
        on_delete = (ds["spec"].get("updateStrategy") or {}).get("type") == "OnDelete"
        pods = [p for p in controlled_by(store.list(PODS, ns)[0], ds) if active(p)]
        placed: set[str] = set()
        for pod in pods:
            node = pod["spec"].get("nodeName")
            stale = (pod["metadata"].get("labels") or {}).get(DS_HASH) != digest
            if node not in eligible or node in placed or (stale and not on_delete):
                _delete_pod(api, ds, pod, "daemonset-controller")
            else:
                placed.add(node)
        for node in sorted(eligible - placed):
            pod = _new_pod(ds, {DS_HASH: digest, "pod-template-generation": str(gen)},
                           ds["metadata"]["name"] + "-")
            pod["spec"]["nodeName"] = node
            pod["spec"]["tolerations"] = [*(pod["spec"].get("tolerations") or []),
                                          *(t for t in extra if t not in (
                                              pod["spec"].get("tolerations") or []))]
            _create_pod(api, ds, pod, "daemonset-controller")
        pods = [p for p in controlled_by(store.list(PODS, ns)[0], ds) if active(p)]
        ready = sum(1 for p in pods if pod_ready(p))
        updated = sum(1 for p in pods if (p["metadata"].get("labels") or {}).get(
            DS_HASH) == digest)
        status: Obj = {
            "currentNumberScheduled": sum(1 for p in pods if p["spec"].get("nodeName")
                                          in eligible),
            "numberMisscheduled": sum(1 for p in pods if p["spec"].get("nodeName")
                                      not in eligible),
            "desiredNumberScheduled": len(eligible), "numberReady": ready,
            "observedGeneration": gen, "updatedNumberScheduled": updated,
            "numberAvailable": ready, "numberUnavailable": len(eligible) - ready}
        _save_status(store, DAEMONSETS, ds, {k: v for k, v in status.items() if v or k in (
            "currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
            "numberReady", "observedGeneration")})


def _revision_for(api: ApiServer, ds: Obj) -> str:
    """The hash of the DaemonSet's current template; its ControllerRevision exists and has the
    highest revision number (an undo renumbers an older one)."""
    store = api.store
    ns = ds["metadata"]["namespace"]
    template = ds["spec"].get("template") or {}
    data = {"spec": {"template": {**copy.deepcopy(template), "$patch": "replace"}}}
    digest = template_hash(template)
    revisions = controlled_by(store.list(REVISIONS, ns)[0], ds)
    top = max((int(r.get("revision", 0)) for r in revisions), default=0)
    current = next((r for r in revisions if semantic(r.get("data")) == semantic(data)), None)
    if current is None:
        labels = {**((template.get("metadata") or {}).get("labels") or {}), DS_HASH: digest}
        store.create(REVISIONS, {
            "metadata": {"name": f"{ds['metadata']['name']}-{digest}", "namespace": ns,
                         "labels": labels, "ownerReferences": [owner_ref(ds)]},
            "data": data, "revision": top + 1})
    elif int(current.get("revision", 0)) != top:
        current["revision"] = top + 1
        store.update(REVISIONS, current, check_rv=False)
    keep = int(ds["spec"].get("revisionHistoryLimit", 10))
    old = sorted((r for r in revisions if semantic(r.get("data")) != semantic(data)),
                 key=lambda r: int(r.get("revision", 0)))
    for r in old[:max(0, len(old) - keep)]:
        store.delete(REVISIONS, ns, r["metadata"]["name"])
    return digest


# ---- Jobs ----

def jobs(api: ApiServer) -> None:
    """Run each Job's pods until `completions` succeed or `backoffLimit` failures."""
    store = api.store
    for job in store.list(JOBS)[0]:
        if condition(job, "Complete").get("status") == "True" or \
                condition(job, "Failed").get("status") == "True":
            _expire_job(api, job)
            continue
        ns, spec = job["metadata"]["namespace"], job["spec"]
        pods = controlled_by(store.list(PODS, ns)[0], job)
        succeeded = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")
        failed = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
        running = [p for p in pods if active(p)]
        completions = spec.get("completions")
        status = dict(job.get("status") or {})
        status.setdefault("startTime", now_stamp())
        conditions = list(status.get("conditions") or [])
        if (completions is not None and succeeded >= int(completions)) or (
                completions is None and succeeded > 0 and not running):
            for pod in running:
                _delete_pod(api, job, pod, "job-controller")
            running = []
            conditions = set_condition(conditions, "SuccessCriteriaMet", "True",
                                       "CompletionsReached",
                                       "Reached expected number of succeeded pods")
            conditions = set_condition(conditions, "Complete", "True", "CompletionsReached",
                                       "Reached expected number of succeeded pods")
            status["completionTime"] = now_stamp()
            events.record(store, job, "Normal", "Completed", "Job completed", "job-controller")
        elif failed > int(spec.get("backoffLimit", 6)):
            for pod in running:
                _delete_pod(api, job, pod, "job-controller")
            running = []
            message = "Job has reached the specified backoff limit"
            conditions = set_condition(conditions, "FailureTarget", "True",
                                       "BackoffLimitExceeded", message)
            conditions = set_condition(conditions, "Failed", "True", "BackoffLimitExceeded",
                                       message)
            events.record(store, job, "Warning", "BackoffLimitExceeded", message,
                          "job-controller")
        elif not spec.get("suspend"):
            left = int(completions) - succeeded if completions is not None else 1
            for _ in range(max(0, min(int(spec.get("parallelism", 1)), left) - len(running))):
                made = _create_pod(api, job, _new_pod(job, {}, job["metadata"]["name"] + "-"),
                                   "job-controller")
                if made is not None:
                    running.append(made)
        for c in conditions:
            c.setdefault("lastProbeTime", c.get("lastTransitionTime"))
        status.update({"active": len(running), "succeeded": succeeded, "failed": failed,
                       "ready": sum(1 for p in running if pod_ready(p)), "terminating": 0,
                       "uncountedTerminatedPods": {}, "conditions": conditions})
        _save_status(store, JOBS, job, {k: v for k, v in status.items()
                                        if v or k in ("ready", "terminating",
                                                      "uncountedTerminatedPods")})


def _expire_job(api: ApiServer, job: Obj) -> None:
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    finished = (job.get("status") or {}).get("completionTime") or next(
        (c.get("lastTransitionTime") for c in (job.get("status") or {}).get("conditions") or []
         if c.get("type") == "Failed"), None)
    if ttl is None or not finished:
        return
    since = dt.datetime.strptime(finished, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    if (dt.datetime.now(dt.UTC) - since).total_seconds() >= int(ttl):
        api.delete(JOBS, job["metadata"]["namespace"], job["metadata"]["name"],
                   {"propagationPolicy": "Background"})
