"""Patches: JSON merge (RFC 7386), strategic merge and server-side apply, as far as pifleet needs.

Strategic merge here knows one rule of the real one: lists of objects that all carry a `name`
(containers, volumes, env, ports with names) merge item by item; other lists are replaced.
Directives (`$patch`, `$setElementOrder/...`, `$retainKeys`, `$deleteFromPrimitiveList/...`)
are honoured as far as `$patch: delete|replace` and otherwise dropped.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

MERGE_KEYS = ("name", "containerPort", "mountPath", "ip", "type", "topologyKey", "port")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, `null` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_key(items: list[Any]) -> str | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in MERGE_KEYS:
        if all(key in i for i in items):
            return key
    return None


def strategic_merge(target: Any, patch: Any) -> Any:
    """Strategic merge patch (the subset described in the module docstring)."""
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: v for k, v in patch.items() if k != "$patch"}
        result = dict(target) if isinstance(target, dict) else {}
        for key, value in patch.items():
            if key.startswith("$"):
                continue
            if value is None:
                result.pop(key, None)
            else:
                result[key] = strategic_merge(result.get(key), value)
        return result
    if isinstance(patch, list):
        old = target if isinstance(target, list) else []
        mk = _merge_key([i for i in patch if not (isinstance(i, dict) and "$patch" in i)] + old)
        if mk is None:
            return copy.deepcopy(patch)
        merged = [copy.deepcopy(i) for i in old]
        for item in patch:
            idx = next((n for n, o in enumerate(merged) if o.get(mk) == item.get(mk)), None)
            if item.get("$patch") == "delete":
                if idx is not None:
                    merged.pop(idx)
            elif idx is None:
                merged.append(strategic_merge({}, item))
            else:
                merged[idx] = strategic_merge(merged[idx], item)
        return merged
    return copy.deepcopy(patch)


def fields_of(obj: Any) -> dict[str, Any]:
    """The fieldsV1 set an applied configuration owns (`f:` keys, `k:` for keyed list items)."""
    out: dict[str, Any] = {}
    if not isinstance(obj, dict):
        return out
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if isinstance(value, dict):
            out[f"f:{key}"] = fields_of(value) or {}
        elif isinstance(value, list) and _merge_key(value):
            mk = _merge_key(value)
            out[f"f:{key}"] = {f'k:{{"{mk}":{_json_scalar(i[mk])}}}': fields_of(i) | {".": {}}
                               for i in value}
        else:
            out[f"f:{key}"] = {}
    return out


def _json_scalar(v: Any) -> str:
    import json

    return json.dumps(v)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def managed_entry(manager: str, operation: str, api_version: str, fields: Any) -> dict[str, Any]:
    """One `metadata.managedFields` entry."""
    return {"manager": manager, "operation": operation, "apiVersion": api_version,
            "time": _now(), "fieldsType": "FieldsV1", "fieldsV1": fields}


def _prune(live: Any, old: Any, new: Any) -> Any:
    """Remove from `live` the fields `old` owned that `new` no longer sets."""
    if not isinstance(live, dict) or not isinstance(old, dict):
        return live
    new = new if isinstance(new, dict) else {}
    for key, sub in old.items():
        if not key.startswith("f:"):
            continue
        name = key[2:]
        if key not in new:
            live.pop(name, None)
        elif sub and isinstance(live.get(name), dict):
            _prune(live[name], sub, new[key])
    return live


class ApplyConflict(Exception):
    """Server-side apply would change fields other managers own (and `force` was not given)."""

    def __init__(self, conflicts: list[tuple[str, str, str]]) -> None:
        super().__init__(f"{len(conflicts)} conflicts")
        self.conflicts = conflicts  # (manager, apiVersion, field path as the server prints it)


_MISSING = object()


def leaves(fields: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """The leaf paths of a fieldsV1 set."""
    out: set[tuple[str, ...]] = set()
    for key, sub in fields.items():
        if key == ".":
            continue
        children = {k: v for k, v in (sub or {}).items() if k != "."}
        if children:
            out |= leaves(children, (*prefix, key))
        else:
            out.add((*prefix, key))
    return out


def build_fields(paths: set[tuple[str, ...]]) -> dict[str, Any]:
    """The fieldsV1 set made of `paths` (inverse of `leaves`)."""
    out: dict[str, Any] = {}
    for path in paths:
        cur = out
        for part in path:
            cur = cur.setdefault(part, {})
    return out


def value_at(obj: Any, path: tuple[str, ...]) -> Any:
    """The value a fieldsV1 path points at in `obj` (a private marker when absent)."""
    import json

    cur = obj
    for part in path:
        if part.startswith("f:"):
            if not isinstance(cur, dict) or part[2:] not in cur:
                return _MISSING
            cur = cur[part[2:]]
        elif part.startswith("k:"):
            key = json.loads(part[2:])
            if not isinstance(cur, list):
                return _MISSING
            cur = next((i for i in cur if isinstance(i, dict)
                        and all(i.get(k) == v for k, v in key.items())), _MISSING)
            if cur is _MISSING:
                return cur
    return cur


def path_text(path: tuple[str, ...]) -> str:
    """`.spec.template.spec.containers[name="x"].image`, as conflict messages print paths."""
    import json

    out = ""
    for part in path:
        if part.startswith("f:"):
            out += "." + part[2:]
        elif part.startswith("k:"):
            key = json.loads(part[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items()) + "]"
    return out


def changed_leaves(before: Any, after: Any) -> set[tuple[str, ...]]:
    """Leaf paths of `after` whose value differs from `before` (what an update took over)."""
    return {p for p in leaves(fields_of(after)) if value_at(before, p) != value_at(after, p)}


def _without(entries: list[dict[str, Any]], manager: str, operation: str,
             paths: set[tuple[str, ...]]) -> list[dict[str, Any]]:
    """Entries of other managers with `paths` taken away (empty entries disappear)."""
    out = []
    for e in entries:
        if (e.get("manager"), e.get("operation")) == (manager, operation):
            out.append(e)
            continue
        kept = leaves(e.get("fieldsV1") or {}) - paths
        if kept:
            out.append(dict(e, fieldsV1=build_fields(kept)))
    return out


def record_update(before: dict[str, Any] | None, after: dict[str, Any], manager: str) -> None:
    """Give `manager` (operation Update) the fields this write changed, taking them from
    whoever owned them, as the real server tracks non-apply writers."""
    if not manager:
        return
    meta = after.setdefault("metadata", {})
    entries = list(meta.get("managedFields") or (before or {}).get("metadata", {}).get(
        "managedFields") or [])
    skip: dict[str, Any] = {"f:metadata": {k: {} for k in (
        "f:managedFields", "f:resourceVersion", "f:uid", "f:creationTimestamp",
        "f:generation")}}
    taken = changed_leaves(before or {}, after) - leaves(skip)
    if not taken:
        return
    entries = _without(entries, manager, "Update", taken)
    own = next((e for e in entries if (e.get("manager"), e.get("operation")) ==
                (manager, "Update")), None)
    paths = taken | (leaves(own.get("fieldsV1") or {}) if own else set())
    entries = [e for e in entries if e is not own]
    entries.append(managed_entry(manager, "Update", str(after.get("apiVersion", "")),
                                 build_fields(paths)))
    meta["managedFields"] = entries


def apply(live: dict[str, Any] | None, applied: dict[str, Any], manager: str,
          force: bool = False) -> dict[str, Any]:
    """Server-side apply of `applied` by `manager` onto `live` (None: create).

    A field another manager owns and this apply would change is a conflict (ApplyConflict)
    unless `force`, which moves the field to this manager. Fields this manager applied before
    and no longer applies are removed; other managers' fields stay.
    """
    api_version = str(applied.get("apiVersion", ""))
    new_fields = fields_of(applied)
    base = copy.deepcopy(live) if live is not None else {}
    entries = list((base.get("metadata") or {}).get("managedFields") or [])
    mine = leaves(new_fields)
    clashes = []
    for e in entries:
        if (e.get("manager"), e.get("operation")) == (manager, "Apply"):
            continue
        for path in sorted(mine & leaves(e.get("fieldsV1") or {})):
            if value_at(base, path) != value_at(applied, path):
                clashes.append((str(e.get("manager")), str(e.get("apiVersion", "")), path))
    if clashes and not force:
        raise ApplyConflict([(m, v, path_text(p)) for m, v, p in clashes])
    entries = _without(entries, manager, "Apply", {p for _, _, p in clashes})
    old = next((e for e in entries if e.get("manager") == manager
                and e.get("operation") == "Apply"), None)
    if old is not None:
        _prune(base, old.get("fieldsV1") or {}, new_fields)
    merged = strategic_merge(base, applied)
    entries = [e for e in entries if not (e.get("manager") == manager
                                          and e.get("operation") == "Apply")]
    entries.append(managed_entry(manager, "Apply", api_version, new_fields))
    merged.setdefault("metadata", {})["managedFields"] = entries
    return dict(merged)
