"""Events (core/v1), as the controllers and the scheduler record them.

An event about the same object with the same reason and message is counted, not repeated (the
client-side aggregation of the real recorders); events older than an hour go (the real
server's `--event-ttl`).
"""

from __future__ import annotations

import datetime as dt
import secrets

from .resources import EVENTS
from .store import Obj, Store, now_stamp

TTL_SECONDS = 3600


def reference(obj: Obj) -> Obj:
    """An ObjectReference to `obj`."""
    meta = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind", ""), "namespace": meta.get("namespace", ""),
           "name": meta.get("name", ""), "uid": meta.get("uid", ""),
           "apiVersion": obj.get("apiVersion", ""),
           "resourceVersion": meta.get("resourceVersion", "")}
    return {k: v for k, v in ref.items() if v}


def record(store: Store, obj: Obj, type_: str, reason: str, message: str, component: str,
           host: str = "") -> None:
    """Record (or count again) one event about `obj`."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    now = now_stamp()
    for old in store.list(EVENTS, namespace, fields=f"involvedObject.uid={meta.get('uid', '')}"
                          f",reason={reason}")[0]:
        if old.get("message") == message and (old.get("source") or {}).get(
                "component") == component:
            old["count"] = int(old.get("count", 1)) + 1
            old["lastTimestamp"] = now
            store.update(EVENTS, old, check_rv=False)
            return
    source = {"component": component, **({"host": host} if host else {})}
    store.create(EVENTS, {
        "metadata": {"name": f"{meta.get('name', '')}.{secrets.token_hex(8)}",
                     "namespace": namespace},
        "involvedObject": reference(obj), "reason": reason, "message": message,
        "source": source, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        "type": type_, "eventTime": None, "reportingComponent": component,
        "reportingInstance": host})


def expire(store: Store) -> None:
    """Delete events last seen more than an hour ago."""
    limit = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=TTL_SECONDS)
    for ev in store.list(EVENTS)[0]:
        stamp = ev.get("lastTimestamp") or ev["metadata"].get("creationTimestamp")
        if stamp and dt.datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(
                tzinfo=dt.UTC) < limit:
            store.delete(EVENTS, ev["metadata"]["namespace"], ev["metadata"]["name"])
