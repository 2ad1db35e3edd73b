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


def apply(live: dict[str, Any] | None, applied: dict[str, Any], manager: str) -> dict[str, Any]:
    """Server-side apply of `applied` by `manager` onto `live` (None: create).

    Fields this manager set before and no longer sets are removed; other managers' fields stay.
    Conflicts are not detected: the stand-in behaves as if `force` were always given.
    """
    api_version = str(applied.get("apiVersion", ""))
    new_fields = fields_of(applied)
    base = copy.deepcopy(live) if live is not None else {}
    entries = list((base.get("metadata") or {}).get("managedFields") or [])
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
