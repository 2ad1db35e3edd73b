"""Server-side printing: the `meta.k8s.io/v1` Tables kubectl asks for when it prints objects.

`kubectl get` sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...` and prints the
columns the server chooses; the columns here are those of the real server for each kind
(wide-only columns have priority 1).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from .store import Obj, condition

Row = Callable[[Obj, dt.datetime], list[Any]]


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)


def duration(seconds: int) -> str:
    """kubectl's short human duration (`5s`, `3m12s`, `2d4h`)."""
    seconds = max(0, seconds)
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    return f"{days}d" if days < 365 * 2 else f"{days // 365}y{days % 365}d"


def age(o: Obj, now: dt.datetime, key: str = "creationTimestamp") -> str:
    """The age of an object's timestamp, or `<unknown>`."""
    stamp = (o.get("metadata") or {}).get(key)
    return duration(int((now - _parse(stamp)).total_seconds())) if stamp else "<unknown>"


def _spec(o: Obj) -> Obj:
    return o.get("spec") or {}


def _status(o: Obj) -> Obj:
    return o.get("status") or {}


def _selector(sel: Obj | None) -> str:
    if not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in (sel.get("matchLabels") or {}).items()]
    for e in sel.get("matchExpressions") or []:
        op, values = e.get("operator"), ",".join(e.get("values") or [])
        parts.append({"In": f"{e['key']} in ({values})", "NotIn": f"{e['key']} notin ({values})",
                      "Exists": e["key"], "DoesNotExist": f"!{e['key']}"}.get(op, e["key"]))
    return ",".join(parts) or "<none>"


def _containers(o: Obj) -> tuple[str, str]:
    spec = ((_spec(o).get("template") or {}).get("spec")) or {}
    cs = spec.get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _node(o: Obj, now: dt.datetime) -> list[Any]:
    ready = condition(o, "Ready").get("status")
    # As kubectl prints it: anything but True (False or Unknown) is NotReady.
    status = "Unknown" if ready is None else "Ready" if ready == "True" else "NotReady"
    if _spec(o).get("unschedulable"):
        status += ",SchedulingDisabled"
    labels = o["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels
                   if k.startswith("node-role.kubernetes.io/"))
    info = _status(o).get("nodeInfo") or {}
    addrs = {a["type"]: a["address"] for a in _status(o).get("addresses") or []}
    return [o["metadata"]["name"], status, ",".join(roles) or "<none>", age(o, now),
            info.get("kubeletVersion", ""), addrs.get("InternalIP", "<none>"),
            addrs.get("ExternalIP", "<none>"), info.get("osImage", "<unknown>"),
            info.get("kernelVersion", "<unknown>"), info.get("containerRuntimeVersion",
                                                             "<unknown>")]


def pod_status(o: Obj) -> str:
    """The STATUS column of `kubectl get pods`, by the real printer's rules."""
    st = _status(o)
    reason = st.get("reason") or st.get("phase") or "Pending"
    inits = (_spec(o).get("initContainers")) or []
    for i, c in enumerate(st.get("initContainerStatuses") or []):
        state = c.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode") == 0:
            continue
        if term:
            reason = f"Init:{term.get('reason') or 'Error'}"
        elif wait and wait.get("reason") not in (None, "", "PodInitializing"):
            reason = f"Init:{wait['reason']}"
        else:
            reason = f"Init:{i}/{len(inits)}"
        return reason
    running = False
    for c in reversed(st.get("containerStatuses") or []):
        state = c.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif state.get("terminated"):
            term = state["terminated"]
            reason = f"Signal:{term['signal']}" if term.get("signal") else \
                f"ExitCode:{term.get('exitCode', 0)}"
        elif c.get("ready") and state.get("running"):
            running = True
    if reason == "Completed" and running:
        reason = "Running" if condition(o, "Ready").get("status") == "True" else "NotReady"
    if o["metadata"].get("deletionTimestamp"):
        reason = "Unknown" if st.get("reason") == "NodeLost" else "Terminating"
    return str(reason)


def _pod(o: Obj, now: dt.datetime) -> list[Any]:
    st = _status(o)
    containers = _spec(o).get("containers") or []
    statuses = st.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(c.get("restartCount", 0) for c in statuses)
    gates = _spec(o).get("readinessGates") or []
    return [o["metadata"]["name"], f"{ready}/{len(containers)}", pod_status(o), restarts,
            age(o, now), st.get("podIP") or "<none>", _spec(o).get("nodeName") or "<none>",
            st.get("nominatedNodeName") or "<none>",
            f"0/{len(gates)}" if gates else "<none>"]


def _deploy(o: Obj, now: dt.datetime) -> list[Any]:
    st = _status(o)
    want = _spec(o).get("replicas", 1)
    names, images = _containers(o)
    return [o["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{want}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0), age(o, now),
            names, images, _selector(_spec(o).get("selector"))]


def _replicaset(o: Obj, now: dt.datetime) -> list[Any]:
    st = _status(o)
    names, images = _containers(o)
    return [o["metadata"]["name"], _spec(o).get("replicas", 1), st.get("replicas", 0),
            st.get("readyReplicas", 0), age(o, now), names, images,
            _selector(_spec(o).get("selector"))]


def _daemonset(o: Obj, now: dt.datetime) -> list[Any]:
    st = _status(o)
    sel = ((_spec(o).get("template") or {}).get("spec") or {}).get("nodeSelector")
    names, images = _containers(o)
    return [o["metadata"]["name"], st.get("desiredNumberScheduled", 0),
            st.get("currentNumberScheduled", 0), st.get("numberReady", 0),
            st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in (sel or {}).items()) or "<none>", age(o, now),
            names, images, _selector(_spec(o).get("selector"))]


def _job(o: Obj, now: dt.datetime) -> list[Any]:
    st = _status(o)
    completions = _spec(o).get("completions")
    done = f"{st.get('succeeded', 0)}/{completions}" if completions is not None else \
        f"{st.get('succeeded', 0)}/1 of {_spec(o).get('parallelism', 1)}"
    status = "Running"
    for kind, label in (("Complete", "Complete"), ("Failed", "Failed"),
                        ("FailureTarget", "FailureTarget"), ("SuccessCriteriaMet",
                                                             "SuccessCriteriaMet"),
                        ("Suspended", "Suspended")):
        if condition(o, kind).get("status") == "True":
            status = label
            break
    start, end = st.get("startTime"), st.get("completionTime")
    took = duration(int(((_parse(end) if end else now) - _parse(start)).total_seconds())) \
        if start else ""
    names, images = _containers(o)
    return [o["metadata"]["name"], status, done, took, age(o, now), names, images,
            _selector(_spec(o).get("selector"))]


def _ports(ports: list[Obj]) -> str:
    out = []
    for p in ports:
        text = str(p.get("port"))
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        out.append(f"{text}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _service(o: Obj, now: dt.datetime) -> list[Any]:
    spec = _spec(o)
    kind = spec.get("type", "ClusterIP")
    external = ",".join(spec.get("externalIPs") or [])
    if kind == "LoadBalancer":
        ingress = ",".join(i.get("ip") or i.get("hostname", "")
                           for i in (_status(o).get("loadBalancer") or {}).get("ingress") or [])
        external = ",".join(x for x in (ingress, external) if x) or "<pending>"
    elif kind == "ExternalName":
        external = spec.get("externalName", "")
    sel = spec.get("selector") or {}
    return [o["metadata"]["name"], kind, spec.get("clusterIP") or "<none>", external or "<none>",
            _ports(spec.get("ports") or []), age(o, now),
            ",".join(f"{k}={v}" for k, v in sel.items()) or "<none>"]


def _endpoints(o: Obj, now: dt.datetime) -> list[Any]:
    pairs = []
    for subset in o.get("subsets") or []:
        for a in subset.get("addresses") or []:
            for p in subset.get("ports") or [{}]:
                pairs.append(f"{a['ip']}:{p['port']}" if p.get("port") else a["ip"])
    text = ",".join(pairs[:3]) + (f" + {len(pairs) - 3} more..." if len(pairs) > 3 else "")
    return [o["metadata"]["name"], text or "<none>", age(o, now)]


def _slice(o: Obj, now: dt.datetime) -> list[Any]:
    ports = ",".join(str(p.get("port")) for p in o.get("ports") or []) or "<unset>"
    ips = [a for e in o.get("endpoints") or [] for a in e.get("addresses") or []]
    text = ",".join(ips[:3]) + (f" + {len(ips) - 3} more..." if len(ips) > 3 else "")
    return [o["metadata"]["name"], o.get("addressType", ""), ports, text or "<unset>",
            age(o, now)]


def _event(o: Obj, now: dt.datetime) -> list[Any]:
    inv = o.get("involvedObject") or {}
    src = o.get("source") or {}
    last = o.get("lastTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp")
    first = o.get("firstTimestamp") or last
    return [duration(int((now - _parse(last)).total_seconds())) if last else "<unknown>",
            o.get("type", ""), o.get("reason", ""),
            f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}",
            inv.get("fieldPath", ""), ", ".join(x for x in (src.get("component"),
                                                            src.get("host")) if x),
            o.get("message", ""),
            duration(int((now - _parse(first)).total_seconds())) if first else "<unknown>",
            o.get("count", 1), o["metadata"]["name"]]


def _binding(o: Obj, now: dt.datetime) -> list[Any]:
    ref = o.get("roleRef") or {}
    subjects = o.get("subjects") or []

    def of(kind: str) -> str:
        names = [(f"{s.get('namespace')}/" if kind == "ServiceAccount" else "") + s["name"]
                 for s in subjects if s.get("kind") == kind]
        return ", ".join(names)

    return [o["metadata"]["name"], f"{ref.get('kind')}/{ref.get('name')}", age(o, now),
            of("User"), of("Group"), of("ServiceAccount")]


def _csr(o: Obj, now: dt.datetime) -> list[Any]:
    spec = _spec(o)
    conds = [c["type"] for c in _status(o).get("conditions") or [] if c.get("status") == "True"]
    if _status(o).get("certificate"):
        conds.append("Issued")
    seconds = spec.get("expirationSeconds")
    return [o["metadata"]["name"], age(o, now), spec.get("signerName", ""),
            spec.get("username", ""), duration(seconds) if seconds else "<none>",
            ",".join(conds) or "Pending"]


def _col(name: str, kind: str = "string", priority: int = 0) -> Obj:
    fmt = "name" if name == "Name" else "date" if name == "Created At" else ""
    return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}


def _wide(*names: str) -> list[Obj]:
    return [_col(n, priority=1) for n in names]


_TABLES: dict[str, tuple[list[Obj], Row]] = {
    "Node": ([_col("Name"), _col("Status"), _col("Roles"), _col("Age"), _col("Version"),
              *_wide("Internal-IP", "External-IP", "OS-Image", "Kernel-Version",
                     "Container-Runtime")], _node),
    "Pod": ([_col("Name"), _col("Ready"), _col("Status"), _col("Restarts", "integer"),
             _col("Age"), *_wide("IP", "Node", "Nominated Node", "Readiness Gates")], _pod),
    "Deployment": ([_col("Name"), _col("Ready"), _col("Up-to-date", "integer"),
                    _col("Available", "integer"), _col("Age"),
                    *_wide("Containers", "Images", "Selector")], _deploy),
    "ReplicaSet": ([_col("Name"), _col("Desired", "integer"), _col("Current", "integer"),
                    _col("Ready", "integer"), _col("Age"),
                    *_wide("Containers", "Images", "Selector")], _replicaset),
    "DaemonSet": ([_col("Name"), _col("Desired", "integer"), _col("Current", "integer"),
                   _col("Ready", "integer"), _col("Up-to-date", "integer"),
                   _col("Available", "integer"), _col("Node Selector"), _col("Age"),
                   *_wide("Containers", "Images", "Selector")], _daemonset),
    "Job": ([_col("Name"), _col("Status"), _col("Completions"), _col("Duration"), _col("Age"),
             *_wide("Containers", "Images", "Selector")], _job),
    "Service": ([_col("Name"), _col("Type"), _col("Cluster-IP"), _col("External-IP"),
                 _col("Port(s)"), _col("Age"), *_wide("Selector")], _service),
    "Endpoints": ([_col("Name"), _col("Endpoints"), _col("Age")], _endpoints),
    "EndpointSlice": ([_col("Name"), _col("AddressType"), _col("Ports"), _col("Endpoints"),
                       _col("Age")], _slice),
    "Event": ([_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"),
               *_wide("Subobject", "Source"), _col("Message"),
               *_wide("First Seen", "Count", "Name")], _event),
    "Namespace": ([_col("Name"), _col("Status"), _col("Age")],
                  lambda o, n: [o["metadata"]["name"], _status(o).get("phase", ""), age(o, n)]),
    "ConfigMap": ([_col("Name"), _col("Data", "integer"), _col("Age")],
                  lambda o, n: [o["metadata"]["name"],
                                len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                                age(o, n)]),
    "Secret": ([_col("Name"), _col("Type"), _col("Data", "integer"), _col("Age")],
               lambda o, n: [o["metadata"]["name"], o.get("type", "Opaque"),
                             len(o.get("data") or {}), age(o, n)]),
    "ServiceAccount": ([_col("Name"), _col("Secrets", "integer"), _col("Age")],
                       lambda o, n: [o["metadata"]["name"], len(o.get("secrets") or []),
                                     age(o, n)]),
    "ControllerRevision": ([_col("Name"), _col("Controller"), _col("Revision", "integer"),
                            _col("Age")],
                           lambda o, n: [o["metadata"]["name"], next(
                               (f"{r['kind'].lower()}.{r['apiVersion'].split('/')[0]}/"
                                f"{r['name']}" for r in o["metadata"].get("ownerReferences")
                                or [] if r.get("controller")), "<none>"),
                               o.get("revision", 0), age(o, n)]),
    "Role": ([_col("Name"), _col("Created At")],
             lambda o, n: [o["metadata"]["name"], o["metadata"].get("creationTimestamp")]),
    "ClusterRole": ([_col("Name"), _col("Created At")],
                    lambda o, n: [o["metadata"]["name"],
                                  o["metadata"].get("creationTimestamp")]),
    "RoleBinding": ([_col("Name"), _col("Role"), _col("Age"),
                     *_wide("Users", "Groups", "ServiceAccounts")], _binding),
    "ClusterRoleBinding": ([_col("Name"), _col("Role"), _col("Age"),
                            *_wide("Users", "Groups", "ServiceAccounts")], _binding),
    "CertificateSigningRequest": ([_col("Name"), _col("Age"), _col("SignerName"),
                                   _col("Requestor"), _col("RequestedDuration"),
                                   _col("Condition")], _csr),
    "Lease": ([_col("Name"), _col("Holder"), _col("Age")],
              lambda o, n: [o["metadata"]["name"], _spec(o).get("holderIdentity", ""),
                            age(o, n)]),
}


def table(kind: str, objects: list[Obj], list_meta: Obj, include: str = "Metadata") -> Obj:
    """A `meta.k8s.io/v1` Table of `objects` (`include`: None, Metadata or Object)."""
    now = dt.datetime.now(dt.UTC)
    columns, row = _TABLES.get(kind, ([_col("Name"), _col("Age")],
                                      lambda o, n: [o["metadata"]["name"], age(o, n)]))
    rows = []
    for o in objects:
        entry: Obj = {"cells": row(o, now)}
        if include == "Object":
            entry["object"] = o
        elif include != "None":
            entry["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                               "metadata": o.get("metadata", {})}
        rows.append(entry)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": columns, "rows": rows}


def partial(doc: Obj, listing: bool) -> Obj:
    """PartialObjectMetadata(List): only the metadata of an object or of a list's items."""
    if listing:
        return {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                "metadata": doc.get("metadata", {}),
                "items": [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": i.get("metadata", {})} for i in doc.get("items") or []]}
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": doc.get("metadata", {})}
