"""Endpoints and EndpointSlices for Services, as the endpoint controllers keep them.

A Service with a selector gets an Endpoints object of the same name and one EndpointSlice
(`NAME-xxxxx`, owned by the Service): the pods that match, Ready ones as addresses, the others
as not-ready addresses, and the Service's ports resolved against each pod's container ports.
The `kubernetes` Service points at the API server itself, as the real server keeps it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from . import resources
from .resources import ENDPOINT_SLICES, ENDPOINTS, PODS, SERVICES
from .store import ApiError, Obj, now_stamp, selector_match, suffix
from .workloads import active, owner_ref, pod_ready

if TYPE_CHECKING:
    from .api import ApiServer

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
SLICE_CONTROLLER = "endpointslice-controller.k8s.io"


def _target_port(port: Obj, pod: Obj) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target:
                return int(p["containerPort"])
    return None


def _address(pod: Obj) -> Obj:
    meta = pod["metadata"]
    out: Obj = {"ip": pod["status"]["podIP"],
                "targetRef": {"kind": "Pod", "namespace": meta["namespace"],
                              "name": meta["name"], "uid": meta["uid"]}}
    if pod["spec"].get("nodeName"):
        out["nodeName"] = pod["spec"]["nodeName"]
    return out


def _subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    """Pods grouped by the ports they resolve to, as the endpoints controller packs them."""
    spec = service.get("spec") or {}
    groups: dict[tuple[Any, ...], Obj] = {}
    for pod in pods:
        ports = []
        for p in spec.get("ports") or []:
            number = _target_port(p, pod)
            if number is not None:
                entry = {"port": number, "protocol": p.get("protocol", "TCP")}
                if p.get("name"):
                    entry["name"] = p["name"]
                ports.append(entry)
        key = tuple(sorted((e.get("name", ""), e["port"], e["protocol"]) for e in ports))
        subset = groups.setdefault(key, {"ports": ports})
        ready = pod_ready(pod) or spec.get("publishNotReadyAddresses")
        subset.setdefault("addresses" if ready else "notReadyAddresses", []).append(
            _address(pod))
    for subset in groups.values():
        for field in ("addresses", "notReadyAddresses"):
            if field in subset:
                subset[field].sort(key=lambda a: a["ip"])
        if not subset["ports"]:
            subset.pop("ports")
    return [groups[k] for k in sorted(groups)]


def _slice_endpoints(pods: list[Obj], publish_not_ready: bool) -> list[Obj]:
    out = []
    for pod in sorted(pods, key=lambda p: p["status"]["podIP"]):
        ready = pod_ready(pod)
        entry: Obj = {"addresses": [pod["status"]["podIP"]],
                      "conditions": {"ready": ready or publish_not_ready, "serving": ready,
                                     "terminating": False},
                      "targetRef": _address(pod)["targetRef"]}
        if pod["spec"].get("nodeName"):
            entry["nodeName"] = pod["spec"]["nodeName"]
        out.append(entry)
    return out


def _write(api: ApiServer, kind: resources.Kind, existing: Obj | None, wanted: Obj,
           compare: tuple[str, ...]) -> None:
    store = api.store
    if existing is None:
        store.create(kind, wanted)
        return
    if all(existing.get(k) == wanted.get(k) for k in compare) and (
            existing["metadata"].get("labels") == wanted["metadata"].get("labels")):
        return
    updated = dict(existing)
    for k in compare:
        if wanted.get(k) is None:
            updated.pop(k, None)
        else:
            updated[k] = wanted[k]
    updated["metadata"] = dict(existing["metadata"], labels=wanted["metadata"].get("labels"),
                               annotations={**(existing["metadata"].get("annotations") or {}),
                                            **(wanted["metadata"].get("annotations") or {})})
    store.update(kind, updated, check_rv=False)


def reconcile(api: ApiServer) -> None:
    """Endpoints and EndpointSlices of every Service, and of none that is gone."""
    store = api.store
    services = store.list(SERVICES)[0]
    wanted: set[tuple[str, str]] = set()
    for svc in services:
        meta, spec = svc["metadata"], svc.get("spec") or {}
        ns, name = meta["namespace"], meta["name"]
        if (ns, name) == ("default", "kubernetes"):
            _apiserver_endpoints(api, svc)
            wanted.add((ns, name))
            continue
        if not spec.get("selector") or spec.get("type") == "ExternalName":
            continue
        wanted.add((ns, name))
        pods = [p for p in store.list(PODS, ns)[0] if active(p)
                and (p.get("status") or {}).get("podIP")
                and selector_match({"matchLabels": spec["selector"]},
                                   p["metadata"].get("labels") or {})]
        labels = {**(meta.get("labels") or {})}
        if spec.get("clusterIP") == "None":
            labels["service.kubernetes.io/headless"] = ""
        subsets = _subsets(svc, pods)
        ep: Obj = {"metadata": {"name": name, "namespace": ns, "labels": labels,
                                "annotations": {"endpoints.kubernetes.io/last-change-trigger-"
                                                "time": now_stamp()}}}
        if subsets:
            ep["subsets"] = subsets
        current = store.find(ENDPOINTS, ns, name)
        if current is None or current.get("subsets") != ep.get("subsets") or \
                current["metadata"].get("labels") != labels:
            _write(api, ENDPOINTS, current, ep, ("subsets",))
        slice_labels = {**labels, SERVICE_NAME: name, MANAGED_BY: SLICE_CONTROLLER}
        slice_ports = [{"name": p.get("name", ""), "port": _target_port(p, pods[0]) if pods
                        else p.get("port"), "protocol": p.get("protocol", "TCP")}
                       for p in spec.get("ports") or []] if pods else []
        mine = store.list(ENDPOINT_SLICES, ns,
                          f"{SERVICE_NAME}={name},{MANAGED_BY}={SLICE_CONTROLLER}")[0]
        body: Obj = {"metadata": {"name": mine[0]["metadata"]["name"] if mine
                                  else f"{name}-{suffix()}", "namespace": ns,
                                  "labels": slice_labels, "ownerReferences": [owner_ref(svc)]},
                     "addressType": "IPv4",
                     "endpoints": _slice_endpoints(pods, bool(spec.get(
                         "publishNotReadyAddresses"))),
                     "ports": slice_ports}
        _write(api, ENDPOINT_SLICES, mine[0] if mine else None, body, ("endpoints", "ports"))
        for extra in mine[1:]:
            store.delete(ENDPOINT_SLICES, ns, extra["metadata"]["name"])
    for ep in store.list(ENDPOINTS)[0]:
        key = (ep["metadata"]["namespace"], ep["metadata"]["name"])
        if key not in wanted:
            with contextlib.suppress(ApiError):
                store.delete(ENDPOINTS, *key)


def _apiserver_endpoints(api: ApiServer, svc: Obj) -> None:
    store = api.store
    port = {"name": "https", "port": api.port, "protocol": "TCP"}
    ep = {"metadata": {"name": "kubernetes", "namespace": "default",
                       "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
          "subsets": [{"addresses": [{"ip": api.advertise}], "ports": [port]}]}
    _write(api, ENDPOINTS, store.find(ENDPOINTS, "default", "kubernetes"), ep, ("subsets",))
    body = {"metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {SERVICE_NAME: "kubernetes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [api.advertise], "conditions": {"ready": True}}],
            "ports": [port]}
    _write(api, ENDPOINT_SLICES, store.find(ENDPOINT_SLICES, "default", "kubernetes"), body,
           ("endpoints", "ports"))
