"""Decode the protobuf bodies kubectl's typed commands send (`kubectl create token|sa|...`).

kubectl encodes built-in kinds as `k8s\\0` + a `runtime.Unknown` message (type meta, raw
object). The stand-in answers in JSON, which clients accept, and decodes only request bodies of
the kinds below, field by field, from the wire format; anything else is refused with 415.
"""

from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"

# A schema maps a field number to (JSON name, type, repeated). Types: "str", "int", "bool",
# "map" (string values), "bytesmap" (bytes values, base64 in JSON) or a nested schema.
Schema = dict[int, tuple[str, Any, bool]]

META: Schema = {1: ("name", "str", False), 2: ("generateName", "str", False),
                3: ("namespace", "str", False), 11: ("labels", "map", False),
                12: ("annotations", "map", False), 14: ("finalizers", "str", True)}
SUBJECT: Schema = {1: ("kind", "str", False), 2: ("apiGroup", "str", False),
                   3: ("name", "str", False), 4: ("namespace", "str", False)}
ROLE_REF: Schema = {1: ("apiGroup", "str", False), 2: ("kind", "str", False),
                    3: ("name", "str", False)}
BINDING: Schema = {1: ("metadata", META, False), 2: ("subjects", SUBJECT, True),
                   3: ("roleRef", ROLE_REF, False)}
KINDS: dict[str, Schema] = {
    "Namespace": {1: ("metadata", META, False)},
    "ServiceAccount": {1: ("metadata", META, False),
                       4: ("automountServiceAccountToken", "bool", False)},
    "ConfigMap": {1: ("metadata", META, False), 2: ("data", "map", False),
                  3: ("binaryData", "bytesmap", False), 4: ("immutable", "bool", False)},
    "Secret": {1: ("metadata", META, False), 2: ("data", "bytesmap", False),
               3: ("type", "str", False), 4: ("stringData", "map", False),
               5: ("immutable", "bool", False)},
    "TokenRequest": {1: ("metadata", META, False), 2: ("spec", {
        1: ("audiences", "str", True), 4: ("expirationSeconds", "int", False),
        3: ("boundObjectRef", {1: ("kind", "str", False), 2: ("apiVersion", "str", False),
                               3: ("name", "str", False), 4: ("uid", "str", False)},
            False)}, False)},
    "ClusterRoleBinding": BINDING,
    "RoleBinding": BINDING,
}


class Unsupported(ValueError):
    """The body is not protobuf of a kind this module knows."""


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data):
            raise Unsupported("truncated varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs: varints as int, length-delimited as bytes."""
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            out.append((number, value))
        elif wire == 2:
            size, i = _varint(data, i)
            out.append((number, data[i:i + size]))
            i += size
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise Unsupported(f"wire type {wire}")
    return out


def _map_entry(raw: bytes) -> tuple[str, bytes]:
    entry = dict(fields(raw))
    key, value = entry.get(1, b""), entry.get(2, b"")
    assert isinstance(key, bytes) and isinstance(value, bytes)
    return key.decode(), value


def decode_message(data: bytes, schema: Schema) -> dict[str, Any]:
    """A JSON-shaped dict of the known fields of one message; empty values are omitted."""
    out: dict[str, Any] = {}
    for number, value in fields(data):
        if number not in schema:
            continue
        name, kind, repeated = schema[number]
        if isinstance(kind, dict):
            if not isinstance(value, bytes):
                raise Unsupported(f"field {name}")
            item: Any = decode_message(value, kind)
        elif kind in ("map", "bytesmap"):
            if not isinstance(value, bytes):
                raise Unsupported(f"field {name}")
            k, v = _map_entry(value)
            out.setdefault(name, {})[k] = (v.decode() if kind == "map"
                                           else base64.b64encode(v).decode())
            continue
        elif kind == "str":
            if not isinstance(value, bytes):
                raise Unsupported(f"field {name}")
            item = value.decode()
            if not item and not repeated:
                continue
        elif kind == "int":
            item = value
        else:
            item = bool(value)
        if repeated:
            out.setdefault(name, []).append(item)
        else:
            out[name] = item
    return out


def decode(body: bytes, expected_kind: str) -> dict[str, Any]:
    """The object in a protobuf request body, as JSON would carry it."""
    if not body.startswith(MAGIC):
        raise Unsupported("not a Kubernetes protobuf envelope")
    envelope = dict(fields(body[len(MAGIC):]))
    type_meta, raw = envelope.get(1, b""), envelope.get(2, b"")
    if not isinstance(type_meta, bytes) or not isinstance(raw, bytes):
        raise Unsupported("malformed envelope")
    tm = dict(fields(type_meta))
    api_version = tm.get(1, b"")
    kind = tm.get(2, b"")
    assert isinstance(api_version, bytes) and isinstance(kind, bytes)
    name = kind.decode()
    if name != expected_kind or name not in KINDS:
        raise Unsupported(f"kind {name or '?'}")
    obj = decode_message(raw, KINDS[name])
    return {"apiVersion": api_version.decode(), "kind": name, **obj}
