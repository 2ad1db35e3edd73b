"""The API server's object store: resourceVersions, selectors, watch, and a JSON file on disk.

One lock guards everything; a write bumps the global resourceVersion, records a watch event and
rewrites the state file atomically, so the state survives a restart of the service.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import shape
from .paths import write_private
from .resources import Kind

Obj = dict[str, Any]
Objs = list[Obj]  # (inside Store, `list` names its method)


class ApiError(Exception):
    """A failure the server returns as a Kubernetes `Status`."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> Obj:
        """The `Status` object for this error."""
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "details": self.details,
                "code": self.code}


def condition(obj: Obj, kind: str) -> Obj:
    """A copy of the status condition of that type, or {}."""
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return {}


def not_found(kind: Kind, name: str) -> ApiError:
    """`<plural>.<group> "name" not found`, as the real server words it."""
    return ApiError(404, "NotFound", f'{kind.qualified} "{name}" not found',
                    {"name": name, "group": kind.group, "kind": kind.plural})


# Kinds whose spec changes count in metadata.generation (the others have none).
GENERATED = {"Deployment", "ReplicaSet", "DaemonSet", "Job", "Pod", "StatefulSet", "CronJob"}
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # generated name suffixes, as the real server's


def suffix(n: int = 5) -> str:
    """A random name suffix (`generateName`, volume names) from the real server's alphabet."""
    return "".join(secrets.choice(SAFE_ALPHABET) for _ in range(n))


def now_stamp() -> str:
    """RFC 3339 UTC timestamp with second precision, as metadata uses."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- selectors ----

_SET_RE = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def label_match(selector: str, labels: dict[str, str]) -> bool:
    """Whether `labels` satisfy a label selector string (`a=b,c!=d,e,!f,g in (h,i)`)."""
    for term in _split_selector(selector or ""):
        term = term.strip()
        m = _SET_RE.match(term)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            has = labels.get(m.group(1)) in values
            if (m.group(2) == "in") != has:
                return False
        elif "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def selector_match(selector: Obj | None, labels: dict[str, str]) -> bool:
    """Whether `labels` satisfy a structured LabelSelector (matchLabels/matchExpressions)."""
    if not selector:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _field_value(obj: Obj, path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)


def field_match(selector: str, obj: Obj) -> bool:
    """Whether `obj` satisfies a field selector (`spec.nodeName=x,metadata.name!=y`)."""
    for term in (selector or "").split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            k, v = term.split("!=", 1)
            if _field_value(obj, k) == v:
                return False
        else:
            k, v = term.replace("==", "=").split("=", 1)
            if _field_value(obj, k) != v:
                return False
    return True


class Store:
    """All objects, keyed by kind, namespace and name."""

    HISTORY = 5000

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.cond = threading.Condition()
        self.rv = 0
        self.objects: dict[str, dict[tuple[str, str], Obj]] = {}
        self.history: deque[tuple[int, str, str, Obj]] = deque(maxlen=self.HISTORY)
        self.kind_rv: dict[str, int] = {}  # kind key -> resourceVersion of its last change
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            self.rv = int(data["resourceVersion"])
            for key, objs in data["objects"].items():
                self.objects[key] = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
                                     for o in objs}

    def _save(self) -> None:
        if self.path is None:
            return
        data = {"resourceVersion": self.rv,
                "objects": {k: list(v.values()) for k, v in self.objects.items()}}
        # The state holds Secrets and the bootstrap tokens: readable by root only.
        write_private(self.path, json.dumps(data))

    def _record(self, kind: Kind, kind_type: str, obj: Obj) -> None:
        self.history.append((self.rv, kind.key, kind_type, copy.deepcopy(obj)))
        self.kind_rv[kind.key] = self.rv
        self._save()
        self.cond.notify_all()

    def list(self, kind: Kind, namespace: str = "", labels: str = "",
             fields: str = "") -> tuple[list[Obj], str]:
        """Matching objects, sorted by namespace and name, and the current resourceVersion."""
        items, rv, _, _ = self.page(kind, namespace, labels, fields)
        return items, rv

    def page(self, kind: Kind, namespace: str = "", labels: str = "", fields: str = "",
             limit: int = 0, after: tuple[str, str] | None = None
             ) -> tuple[Objs, str, tuple[str, str] | None, int]:
        """Up to `limit` matching objects after the key `after` (0: all), the resourceVersion,
        the key of the last one returned when more remain (else None) and how many remain."""
        with self.cond:
            matching = [o for key, o in sorted(self.objects.get(kind.key, {}).items())
                        if (not namespace or key[0] == namespace)
                        and (after is None or key > after)
                        and label_match(labels, o["metadata"].get("labels") or {})
                        and field_match(fields, o)]
            chosen = matching[:limit] if limit else matching
            more = len(matching) - len(chosen)
            last = None
            if more and chosen:
                meta = chosen[-1]["metadata"]
                last = (meta.get("namespace", "") if kind.namespaced else "", meta["name"])
            return [copy.deepcopy(o) for o in chosen], str(self.rv), last, more

    def changed_at(self, *kinds: Kind) -> int:
        """The resourceVersion of the last change to any of `kinds`."""
        with self.cond:
            return max((self.kind_rv.get(k.key, 0) for k in kinds), default=0)

    def get(self, kind: Kind, namespace: str, name: str) -> Obj:
        """One object, or NotFound."""
        with self.cond:
            obj = self.objects.get(kind.key, {}).get((namespace, name))
            if obj is None:
                raise not_found(kind, name)
            return copy.deepcopy(obj)

    def find(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        """One object, or None."""
        try:
            return self.get(kind, namespace, name)
        except ApiError:
            return None

    def create(self, kind: Kind, obj: Obj, dry_run: bool = False, uid: str = "") -> Obj:
        """Store a new object, filling uid, timestamps and resourceVersion (`dry_run`: only
        say what would be stored)."""
        obj = copy.deepcopy(obj)
        with self.cond:
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + suffix()
            name = meta.get("name")
            if not name:
                raise ApiError(422, "Invalid", f"{kind.kind} is invalid: metadata.name: "
                               "Required value: name or generateName is required",
                               {"kind": kind.kind})
            ns = meta.get("namespace", "") if kind.namespaced else ""
            bucket = self.objects.setdefault(kind.key, {})
            if (ns, name) in bucket:
                raise ApiError(409, "AlreadyExists", f'{kind.qualified} "{name}" already exists',
                               {"name": name, "group": kind.group, "kind": kind.plural})
            if not kind.namespaced:
                meta.pop("namespace", None)
            meta["uid"] = uid or str(uuid.uuid4())
            meta["creationTimestamp"] = now_stamp()
            if kind.kind in GENERATED:
                meta.setdefault("generation", 1)
            else:
                meta.pop("generation", None)
            obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
            shape.drop_empty(kind.api_version, kind.kind, obj)
            if dry_run:
                meta.pop("resourceVersion", None)
                return obj
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
            bucket[(ns, name)] = obj
            self._record(kind, "ADDED", obj)
            return copy.deepcopy(obj)

    def update(self, kind: Kind, obj: Obj, check_rv: bool = True, dry_run: bool = False) -> Obj:
        """Replace an object; a stale `resourceVersion` is a Conflict as in the real server
        (`dry_run`: only say what would be stored)."""
        obj = copy.deepcopy(obj)
        with self.cond:
            meta = obj.setdefault("metadata", {})
            ns = meta.get("namespace", "") if kind.namespaced else ""
            old = self.objects.get(kind.key, {}).get((ns, meta.get("name", "")))
            if old is None:
                raise not_found(kind, meta.get("name", ""))
            sent_rv = meta.get("resourceVersion")
            if check_rv and sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict",
                               f'Operation cannot be fulfilled on {kind.qualified} '
                               f'"{meta["name"]}": the '
                               "object has been modified; please apply your changes to the "
                               "latest version and try again",
                               {"name": meta["name"], "group": kind.group, "kind": kind.plural})
            for fixed in ("uid", "creationTimestamp"):
                meta[fixed] = old["metadata"][fixed]
            shape.drop_empty(kind.api_version, kind.kind, obj)
            if kind.kind in GENERATED:
                gen = old["metadata"].get("generation", 1)
                meta["generation"] = gen + 1 if obj.get("spec") != old.get("spec") else gen
            else:
                meta.pop("generation", None)
            if obj == old | {"metadata": obj["metadata"]} and _same_meta(meta, old["metadata"]):
                return copy.deepcopy(old)  # a no-op write keeps the resourceVersion
            obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
            if dry_run:
                meta["resourceVersion"] = old["metadata"]["resourceVersion"]
                return obj
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
            self.objects[kind.key][(ns, meta["name"])] = obj
            self._record(kind, "MODIFIED", obj)
            return copy.deepcopy(obj)

    def delete(self, kind: Kind, namespace: str, name: str, dry_run: bool = False,
               uid: str = "", resource_version: str = "") -> Obj:
        """Remove an object at once (no finalizers or grace periods in the stand-in); `uid` and
        `resource_version` are DeleteOptions' preconditions."""
        with self.cond:
            obj = self.objects.get(kind.key, {}).get((namespace, name))
            if obj is None:
                raise not_found(kind, name)
            for key, wanted in (("UID", uid), ("ResourceVersion", resource_version)):
                have = obj["metadata"]["uid" if key == "UID" else "resourceVersion"]
                if wanted and wanted != have:
                    raise ApiError(409, "Conflict", f"Operation cannot be fulfilled on "
                                   f'{kind.qualified} "{name}": Precondition failed: {key} in '
                                   f"precondition: {wanted}, {key} in object meta: {have}",
                                   {"name": name, "group": kind.group, "kind": kind.plural})
            if dry_run:
                return copy.deepcopy(obj)
            del self.objects[kind.key][(namespace, name)]
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._record(kind, "DELETED", obj)
            return copy.deepcopy(obj)

    def watch(self, kind: Kind, since: int, namespace: str, labels: str, fields: str,
              timeout: float) -> Iterator[tuple[str, Obj]]:
        """Events after resourceVersion `since` until `timeout` seconds pass.

        A `since` older than the kept history raises 410 Expired, which clients answer by
        listing again, as with the real server.
        """
        deadline = time.monotonic() + timeout
        last = since
        while True:
            with self.cond:
                oldest = self.history[0][0] - 1 if self.history else self.rv
                if last < oldest:
                    raise ApiError(410, "Expired", f"too old resource version: {last} ({oldest})")
                pending = [(rv, t, o) for rv, key, t, o in self.history
                           if rv > last and key == kind.key]
                if not pending:
                    last = self.rv  # nothing of this kind up to here: never report 410 for it
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    self.cond.wait(min(left, 5.0))
                    yield ("", {})  # a tick: lets the caller notice a client that went away
                    continue
            for rv, kind_type, obj in pending:
                last = rv
                meta = obj.get("metadata", {})
                if namespace and meta.get("namespace") != namespace:
                    continue
                if label_match(labels, meta.get("labels") or {}) and field_match(fields, obj):
                    yield kind_type, copy.deepcopy(obj)


def _same_meta(a: Obj, b: Obj) -> bool:
    def strip(meta: Obj) -> Obj:
        out = {k: v for k, v in meta.items() if k not in ("resourceVersion", "generation")}
        out["managedFields"] = [{k: v for k, v in e.items() if k != "time"}
                                for e in meta.get("managedFields") or []]
        return out

    return strip(a) == strip(b)
