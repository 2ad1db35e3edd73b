"""The stand-in's node lifecycle and taint eviction, on a store with a chosen clock."""

from __future__ import annotations

import datetime as dt

from kube_standin import nodelifecycle as nl
from kube_standin.store import Obj, Store

T0 = dt.datetime(2026, 11, 1, 12, 0, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def node(name: str, ready: str = "True") -> Obj:
    stamp = T0.strftime(nl.STAMP)
    return {"metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": ready,
                                       "lastHeartbeatTime": stamp,
                                       "lastTransitionTime": stamp}]}}


def pod(name: str, node_name: str, tolerations: list[Obj] | None = None) -> Obj:
    spec: Obj = {"nodeName": node_name, "containers": [{"name": "c", "image": "x"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec,
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}


def names(store: Store) -> set[str]:
    return {p["metadata"]["name"] for p in store.list(nl.PODS)[0]}


def test_admission_adds_default_tolerations_unless_the_pod_has_its_own() -> None:
    spec: Obj = {}
    nl.configure(300, 120)
    try:
        nl.default_tolerations(spec)
    finally:
        nl.configure(300, 300)
    assert spec["tolerations"] == [
        {"key": nl.NOT_READY, "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300},
        {"key": nl.UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 120}]
    everything: Obj = {"tolerations": [{"operator": "Exists"}]}
    nl.default_tolerations(everything)
    assert everything["tolerations"] == [{"operator": "Exists"}]
    own: Obj = {"tolerations": [{"key": nl.UNREACHABLE, "operator": "Exists",
                                 "effect": "NoExecute", "tolerationSeconds": 7}]}
    nl.default_tolerations(own)
    assert [t["key"] for t in own["tolerations"]] == [nl.UNREACHABLE, nl.NOT_READY]
    assert own["tolerations"][0]["tolerationSeconds"] == 7


def test_silent_node_goes_unknown_tainted_and_its_pods_not_ready() -> None:
    store = Store(None)
    store.create(nl.NODES, node("n1"))
    store.create(nl.PODS, pod("p1", "n1"))
    nl.monitor(store, grace=40, now=at(30))
    assert "taints" not in store.get(nl.NODES, "", "n1")["spec"]
    nl.monitor(store, grace=40, now=at(41))
    n1 = store.get(nl.NODES, "", "n1")
    assert n1["status"]["conditions"][0]["status"] == "Unknown"
    assert n1["spec"]["taints"] == [
        {"key": nl.UNREACHABLE, "effect": "NoSchedule"},
        {"key": nl.UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-11-01T12:00:41Z"}]
    ready = store.get(nl.PODS, "default", "p1")["status"]["conditions"][0]
    assert ready["status"] == "False"
    # Later rounds keep the time the taint was added.
    nl.monitor(store, grace=40, now=at(90))
    assert store.get(nl.NODES, "", "n1")["spec"]["taints"][1]["timeAdded"] == \
        "2026-11-01T12:00:41Z"


def test_not_ready_node_gets_not_ready_taints_and_loses_them_when_ready() -> None:
    store = Store(None)
    store.create(nl.NODES, dict(node("n1", "False"), spec={"taints": [
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}))
    nl.monitor(store, grace=40, now=at(1))
    taints = store.get(nl.NODES, "", "n1")["spec"]["taints"]
    assert [(t["key"], t["effect"]) for t in taints] == [
        ("node-role.kubernetes.io/control-plane", "NoSchedule"),
        (nl.NOT_READY, "NoSchedule"), (nl.NOT_READY, "NoExecute")]
    n1 = store.get(nl.NODES, "", "n1")
    n1["status"]["conditions"][0]["status"] = "True"
    store.update(nl.NODES, n1)
    nl.monitor(store, grace=40, now=at(2))
    assert store.get(nl.NODES, "", "n1")["spec"]["taints"] == [
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]


def test_eviction_follows_each_pods_tolerations() -> None:
    store = Store(None)
    store.create(nl.NODES, node("n1"))
    store.create(nl.NODES, node("n2"))
    exists = {"key": nl.UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}
    store.create(nl.PODS, pod("defaults", "n1"))  # stored without admission
    store.create(nl.PODS, pod("short", "n1", [dict(exists, tolerationSeconds=5)]))
    store.create(nl.PODS, pod("daemon", "n1", [exists]))
    store.create(nl.PODS, pod("elsewhere", "n2"))
    store.create(nl.PODS, pod("custom", "n2", [dict(exists, tolerationSeconds=5)]))
    nl.monitor(store, grace=40, now=at(41))  # n1 and n2 both unreachable at 41 s
    assert nl.evict(store, at(45)) == []
    assert nl.evict(store, at(46)) == ["default/short", "default/custom"]
    # The taint of another key nobody tolerates on n2: out at once.
    n2 = store.get(nl.NODES, "", "n2")
    n2["spec"]["taints"].append({"key": "maintenance", "effect": "NoExecute",
                                 "timeAdded": "2026-11-01T12:00:50Z"})
    store.update(nl.NODES, n2)
    assert nl.evict(store, at(50)) == ["default/elsewhere"]
    assert nl.evict(store, at(340)) == []
    assert nl.evict(store, at(341)) == ["default/defaults"]
    assert names(store) == {"daemon"}
    # Flags shorten the defaults.
    store.create(nl.PODS, pod("later", "n1"))
    nl.configure(300, 10)
    try:
        assert nl.evict(store, at(350)) == ["default/later"]
    finally:
        nl.configure(300, 300)
