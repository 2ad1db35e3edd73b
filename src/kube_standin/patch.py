"""Patches: JSON patch (RFC 6902), JSON merge (RFC 7386), strategic merge and server-side apply.

Strategic merge follows the real one's rules for the lists whose Go fields carry a merge key
(`patchMergeKey`, see `LIST_KEYS`): containers, volumes, env, ports, volume mounts, conditions
merge item by item; every other list (args, tolerations, rules, subjects) is replaced whole.
Directives: `$patch` (replace, delete, merge), `$retainKeys`, `$deleteFromPrimitiveList/...`,
`$setElementOrder/...` (order is kept as the server had it).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

# Field name -> merge key of the list it holds, as the API's Go types declare them.
LIST_KEYS: dict[str, str] = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "volumes": "name", "env": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "imagePullSecrets": "name", "hostAliases": "ip", "conditions": "type", "addresses": "type",
    "ownerReferences": "uid", "taints": "key", "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name", "schedulingGates": "name", "secrets": "name",
    "podIPs": "ip", "hostIPs": "ip", "resizePolicy": "resourceName",
}
# Lists of strings the real types merge as sets (patchStrategy merge without a key).
SET_LISTS = {"finalizers"}


def merge_key(field: str | None, items: list[Any]) -> str | None:
    """The merge key of the list held by `field` (ports: containerPort or port)."""
    if field == "ports":
        dicts = [i for i in items if isinstance(i, dict)]
        return "containerPort" if any("containerPort" in i for i in dicts) else "port"
    return LIST_KEYS.get(field or "")


class PatchError(ValueError):
    """A patch that cannot be applied (the server answers 422)."""


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


def strategic_merge(target: Any, patch: Any, field: str | None = None) -> Any:
    """Strategic merge patch of `patch` onto `target` (`field`: the name holding them)."""
    if isinstance(patch, dict):
        return _merge_map(target, patch)
    if isinstance(patch, list):
        return _merge_list(target if isinstance(target, list) else [], patch, field)
    return copy.deepcopy(patch)


def _merge_map(target: Any, patch: dict[str, Any]) -> Any:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if directive == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(result.get(name), list) and isinstance(value, list):
                result[name] = [i for i in result[name] if i not in value]
            continue
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        else:
            merged = strategic_merge(result.get(key), value, key)
            if merged is None and isinstance(value, dict) and value.get("$patch") == "delete":
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _merge_list(old: list[Any], patch: list[Any], field: str | None) -> list[Any]:
    if field in SET_LISTS:
        return [*old, *(copy.deepcopy(i) for i in patch if i not in old)]
    items = [i for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [strategic_merge({}, i, None) for i in items]
    key = merge_key(field, [*items, *old])
    if key is None or not all(isinstance(i, dict) for i in [*patch, *old]):
        return copy.deepcopy(items)
    merged = [copy.deepcopy(i) for i in old]
    for item in patch:
        idx = next((n for n, o in enumerate(merged) if o.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                merged.pop(idx)
        elif idx is None:
            merged.append(strategic_merge({}, item))
        else:
            merged[idx] = strategic_merge(merged[idx], item)
    return merged


# ---- JSON patch (RFC 6902) ----

def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], part: str, adding: bool) -> int:
    if part == "-" and adding:
        return len(container)
    if not part.isdigit() or (len(part) > 1 and part.startswith("0")):
        raise PatchError(f"invalid array index {part!r}")
    i = int(part)
    if i > len(container) or (i == len(container) and not adding):
        raise PatchError(f"array index {i} out of bounds")
    return i


def _parent(doc: Any, parts: list[str]) -> Any:
    cur = doc
    for part in parts[:-1]:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list):
            cur = cur[_index(cur, part, False)]
        else:
            raise PatchError(f"path /{'/'.join(parts)} does not exist")
    return cur


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {path} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, False)]
    raise PatchError(f"path {path} does not exist")


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, parts)
    if isinstance(parent, dict):
        if parts[-1] not in parent:
            raise PatchError(f"path {path} does not exist")
        return parent.pop(parts[-1])
    if isinstance(parent, list):
        return parent.pop(_index(parent, parts[-1], False))
    raise PatchError(f"path {path} does not exist")


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts)
    if isinstance(parent, dict):
        parent[parts[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, parts[-1], True), value)
    else:
        raise PatchError(f"path {path} does not exist")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902: apply `operations` (a list of add/remove/replace/move/copy/test) to a copy."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch is a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid operation {json.dumps(op)}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {kind} needs a value")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            if not _pointer(path):
                doc = copy.deepcopy(op["value"])
            else:
                _remove(doc, path)
                doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchError(f"operation {kind} needs from")
            value = _remove(doc, source) if kind == "move" else copy.deepcopy(_get(doc, source))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"testing value {path} failed")
        else:
            raise PatchError(f"unknown operation {kind!r}")
    return doc


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
        elif isinstance(value, list) and merge_key(key, value) and all(
                isinstance(i, dict) and merge_key(key, value) in i for i in value):
            mk = merge_key(key, value)
            out[f"f:{key}"] = {f'k:{{"{mk}":{_json_scalar(i[mk])}}}': fields_of(i) | {".": {}}
                               for i in value}
        else:
            out[f"f:{key}"] = {}
    return out


def _json_scalar(v: Any) -> str:
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
