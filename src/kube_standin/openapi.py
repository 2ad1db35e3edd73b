"""The OpenAPI documents, only as much as kubectl consults: PATCH operations and parameters.

kubectl decides from them whether the server validates fields and honours `dryRun`, and
looks up patch metadata in them; finding no schema for a kind, it falls back to the patch
metadata built into it. So the documents list every kind's PATCH operation with its query
parameters and carry no schemas. Version 3 is what current kubectl reads; version 2 (in
gnostic's protobuf, as kubectl asks for it) is what kubectl 1.20 to 1.27 read.
"""

from __future__ import annotations

from typing import Any

from .protobuf import field_bytes
from .resources import GROUPS, KINDS, Kind

TITLE = "Kubernetes (sandbox stand-in)"
PATCH_PARAMETERS = ("dryRun", "fieldManager", "fieldValidation", "force")


def _patch_path(k: Kind) -> str:
    prefix = f"/apis/{k.group}/{k.version}" if k.group else "/api/v1"
    return f"{prefix}/namespaces/{{namespace}}/{k.plural}/{{name}}" if k.namespaced \
        else f"{prefix}/{k.plural}/{{name}}"


# ---- version 3 ----
# kubectl (1.27+) validates on the server when the PATCH operation of an object's kind lists the
# `fieldValidation` query parameter in /openapi/v3; without that document it insists on
# downloading the full v2 schema and refuses to apply. The stand-in publishes the paths and that
# parameter, and no schemas: kubectl then falls back to its built-in patch metadata.

def v3_root() -> dict[str, Any]:
    """`/openapi/v3`: one entry per group version."""
    paths = {}
    for name, kinds in GROUPS.items():
        if not any(k.stored for k in kinds):
            continue
        gv = f"apis/{name}/{kinds[0].version}" if name else "api/v1"
        paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash=standin"}
    return {"paths": paths}


def v3_group_version(group: str, version: str) -> dict[str, Any] | None:
    """`/openapi/v3/api/v1` or `/openapi/v3/apis/G/V`: PATCH operations and their parameters."""
    kinds = [k for k in GROUPS.get(group, []) if k.version == version and k.stored]
    if not kinds:
        return None
    paths: dict[str, Any] = {}
    for k in kinds:
        params = [{"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
                  for n in PATCH_PARAMETERS]
        paths[_patch_path(k)] = {"patch": {
            "operationId": f"patch{k.kind}", "parameters": params,
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": group, "version": version,
                                                "kind": k.kind}}}
    # No schemas: `kubectl explain` then says it cannot find the kind, and apply uses the
    # patch metadata built into kubectl.
    return {"openapi": "3.0.0", "info": {"title": TITLE, "version": version}, "paths": paths,
            "components": {"schemas": {}}}


# ---- version 2 ----

def v2_json() -> dict[str, Any]:
    """`/openapi/v2` as JSON."""
    paths = {}
    for k in KINDS:
        if not k.stored:
            continue
        paths[_patch_path(k)] = {"patch": {
            "operationId": f"patch{k.kind}",
            "parameters": [{"name": n, "in": "query", "type": "string", "uniqueItems": True}
                           for n in PATCH_PARAMETERS],
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": k.group, "version": k.version,
                                                "kind": k.kind}}}
    return {"swagger": "2.0", "info": {"title": TITLE, "version": "v1"}, "paths": paths,
            "definitions": {}}


def _named_yaml(name: str, text: str) -> bytes:
    """A gnostic NamedAny whose value is YAML text."""
    return field_bytes(1, name.encode()) + field_bytes(2, field_bytes(2, text.encode()))


def v2_protobuf() -> bytes:
    """`/openapi/v2` as gnostic's `openapi_v2.Document` protobuf (the paths only)."""
    paths = b""
    for k in KINDS:
        if not k.stored:
            continue
        params = b"".join(
            field_bytes(8, field_bytes(1, field_bytes(2, field_bytes(3, (
                field_bytes(2, b"query") + field_bytes(4, n.encode()) +
                field_bytes(6, b"string")))))) for n in PATCH_PARAMETERS)
        gvk = f"group: \"{k.group}\"\nkind: {k.kind}\nversion: {k.version}\n"
        operation = (field_bytes(5, f"patch{k.kind}".encode()) + params +
                     field_bytes(13, _named_yaml("x-kubernetes-action", "patch\n")) +
                     field_bytes(13, _named_yaml("x-kubernetes-group-version-kind", gvk)))
        item = field_bytes(8, operation)
        paths += field_bytes(2, field_bytes(1, _patch_path(k).encode()) + field_bytes(2, item))
    info = field_bytes(1, TITLE.encode()) + field_bytes(2, b"v1")
    return field_bytes(1, b"2.0") + field_bytes(2, info) + field_bytes(8, paths)
