"""Kubernetes' protobuf encoding, both ways, driven by the message tables in `protobuf_types`.

A body is `k8s\\0` followed by a `runtime.Unknown` message: the type meta (apiVersion, kind) and
the object's own message. Clients send it for the built-in kinds (kubectl's typed commands) and
ask for it in `Accept`; the server answers in it when it can. Field numbers are facts of the
published API; the tables are written here (see `protobuf_types`).

Decoding is strict: a field number the tables do not know is `Unsupported` (the server answers
415 naming the kind and the field), never silently dropped. Encoding refuses (`Unencodable`) an
object carrying a field the tables do not know, so the server can answer in JSON instead.
JSON's rules for empty values are followed: a zero scalar the client sent is kept only where the
Go type keeps it (pointers and fields without `omitempty`, marked `!` in the tables).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import struct
from typing import Any

from .protobuf_types import KIND_MESSAGES, MESSAGES, Field

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
_ZERO_TIME = -62135596800  # Go's zero time.Time in Unix seconds


class Unsupported(ValueError):
    """A body this module cannot decode: not protobuf, or a kind or field it does not know."""


class Unencodable(ValueError):
    """An object this module cannot encode (a field the tables do not know)."""


# ---- wire format ----

def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise Unsupported("truncated or overlong varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def fields(data: bytes) -> list[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) triples: varints as int, length-delimited as bytes."""
    out: list[tuple[int, int, int | bytes]] = []
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            out.append((number, wire, value))
        elif wire == 2:
            size, i = _varint(data, i)
            if i + size > len(data):
                raise Unsupported("truncated field")
            out.append((number, wire, data[i:i + size]))
            i += size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if i + width > len(data):
                raise Unsupported("truncated field")
            out.append((number, wire, int.from_bytes(data[i:i + width], "little")))
            i += width
        else:
            raise Unsupported(f"wire type {wire}")
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _put_varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative ints travel as their 64-bit two's complement
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _put_varint(number << 3 | wire)


def field_bytes(number: int, raw: bytes) -> bytes:
    """One length-delimited field (bytes, a string or an embedded message)."""
    return _key(number, 2) + _put_varint(len(raw)) + raw


_put_bytes = field_bytes


# ---- special types ----

def _time_text(raw: bytes, micro: bool) -> str | None:
    parts = {n: v for n, _, v in fields(raw)}
    seconds, nanos = _signed(int(parts.get(1, 0))), int(parts.get(2, 0))
    if not raw or seconds == _ZERO_TIME:
        return None
    stamp = dt.datetime.fromtimestamp(seconds, dt.UTC)
    if micro:
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos // 1000:06d}Z"
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_raw(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        raise Unencodable(f"{where}: not a timestamp")
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Unencodable(f"{where}: not a timestamp") from None
    seconds = int(stamp.timestamp())
    nanos = stamp.microsecond * 1000
    return _key(1, 0) + _put_varint(seconds) + (_key(2, 0) + _put_varint(nanos) if nanos else b"")


def _int_or_string(raw: bytes) -> int | str:
    parts = {n: v for n, _, v in fields(raw)}
    if parts.get(1, 0) == 1:
        text = parts.get(3, b"")
        return text.decode() if isinstance(text, bytes) else ""
    return _signed(int(parts.get(2, 0)))


def _int_or_string_raw(value: Any, where: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Unencodable(f"{where}: not an int or a string")
    if isinstance(value, str):
        return _key(1, 0) + _put_varint(1) + _put_bytes(3, value.encode())
    return _key(1, 0) + _put_varint(0) + _key(2, 0) + _put_varint(value)


def _text(raw: bytes, where: str) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise Unsupported(f"{where}: invalid UTF-8") from None


# ---- messages ----

def _scalar(f: Field, wire: int, value: int | bytes, where: str) -> Any:
    kind = f.type
    if kind in ("i", "b"):
        if wire != 0:
            raise Unsupported(f"{where}: wire type {wire}")
        assert isinstance(value, int)
        return _signed(value) if kind == "i" else bool(value)
    if not isinstance(value, bytes):
        raise Unsupported(f"{where}: wire type {wire}")
    if kind == "s":
        return _text(value, where)
    if kind == "y":
        return base64.b64encode(value).decode()
    if kind in ("t", "mt"):
        return _time_text(value, kind == "mt")
    if kind == "q":
        return _text(dict((n, v) for n, _, v in fields(value)).get(1, b""), where)  # type: ignore[arg-type]
    if kind == "ios":
        return _int_or_string(value)
    if kind in ("raw", "fv1"):
        inner = dict((n, v) for n, _, v in fields(value)).get(1, b"")
        if not inner:
            return None
        assert isinstance(inner, bytes)
        if inner.startswith(MAGIC):
            raise Unsupported(f"{where}: an embedded protobuf object")
        try:
            return json.loads(inner)
        except (ValueError, RecursionError):
            raise Unsupported(f"{where}: embedded JSON does not parse") from None
    return decode_message(value, kind, where)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == 0 or value is False


def decode_message(data: bytes, message: str, where: str = "") -> dict[str, Any]:
    """A JSON-shaped dict of one message (`message` names a table in `protobuf_types`)."""
    schema = MESSAGES[message]
    where = where or message
    out: dict[str, Any] = {}
    for number, wire, value in fields(data):
        f = schema.by_number.get(number)
        if f is None:
            raise Unsupported(f"{where}: field {number} is not known to the stand-in")
        at = f"{where}.{f.name}"
        if f.map:
            if not isinstance(value, bytes):
                raise Unsupported(f"{at}: wire type {wire}")
            entry = {n: v for n, _, v in fields(value)}
            key = entry.get(1, b"")
            assert isinstance(key, bytes)
            item = entry.get(2, b"")
            if f.type == "xv":  # map<string, ExtraValue>: a list of strings in JSON
                assert isinstance(item, bytes)
                mapped: Any = [_text(v, at) for n, _, v in fields(item)  # type: ignore[arg-type]
                               if n == 1]
            else:
                mapped = _scalar(f, 2 if isinstance(item, bytes) else 0, item, at)
                if mapped is None and f.type in ("q", "s"):
                    mapped = ""
            out.setdefault(f.name, {})[_text(key, at)] = mapped
            continue
        if f.repeated and f.type == "i" and wire == 2:  # packed repeated integers
            assert isinstance(value, bytes)
            i = 0
            while i < len(value):
                n, i = _varint(value, i)
                out.setdefault(f.name, []).append(_signed(n))
            continue
        item = _scalar(f, wire, value, at)
        if f.inline:
            out.update(item)
        elif f.repeated:
            out.setdefault(f.name, []).append(item)
        elif f.type in MESSAGES or f.type in ("ios", "q"):
            out[f.name] = item  # a present message stays, even empty (as Go's structs print)
        elif item is not None and (f.keep_zero or not _empty(item)):
            out[f.name] = item
    return out


def _encode_value(f: Field, value: Any, where: str) -> bytes:
    kind = f.type
    if kind == "i":
        if isinstance(value, bool) or not isinstance(value, int):
            raise Unencodable(f"{where}: not an integer")
        return _key(f.number, 0) + _put_varint(value)
    if kind == "b":
        if not isinstance(value, bool):
            raise Unencodable(f"{where}: not a boolean")
        return _key(f.number, 0) + _put_varint(int(value))
    if kind == "s":
        if not isinstance(value, str):
            raise Unencodable(f"{where}: not a string")
        return _put_bytes(f.number, value.encode())
    if kind == "y":
        try:
            return _put_bytes(f.number, base64.b64decode(value, validate=True))
        except (ValueError, TypeError):
            raise Unencodable(f"{where}: not base64") from None
    if kind in ("t", "mt"):
        return _put_bytes(f.number, _time_raw(value, where))
    if kind == "q":
        return _put_bytes(f.number, _put_bytes(1, str(value).encode()))
    if kind == "ios":
        return _put_bytes(f.number, _int_or_string_raw(value, where))
    if kind in ("raw", "fv1"):
        return _put_bytes(f.number, _put_bytes(1, json.dumps(value, separators=(",", ":"))
                                               .encode()))
    if not isinstance(value, dict):
        raise Unencodable(f"{where}: not an object")
    return _put_bytes(f.number, encode_message(value, kind, where))


def encode_message(obj: dict[str, Any], message: str, where: str = "") -> bytes:
    """One message from its JSON-shaped dict; Unencodable if it carries an unknown field."""
    schema = MESSAGES[message]
    where = where or message
    unknown = set(obj) - schema.json_names
    if unknown:
        raise Unencodable(f"{where}: field {sorted(unknown)[0]} is not known to the stand-in")
    out = bytearray()
    for f in schema.ordered:
        at = f"{where}.{f.name}"
        if f.inline:
            part = {k: v for k, v in obj.items() if k in MESSAGES[f.type].json_names}
            out += _put_bytes(f.number, encode_message(part, f.type, at))
            continue
        value = obj.get(f.name)
        if value is None:
            continue
        if f.map:
            if not isinstance(value, dict):
                raise Unencodable(f"{at}: not a map")
            for k in sorted(value):
                v = value[k]
                if f.type == "xv":
                    inner = b"".join(_put_bytes(1, str(s).encode()) for s in v or [])
                    entry = _put_bytes(1, str(k).encode()) + _put_bytes(2, inner)
                else:
                    entry = _put_bytes(1, str(k).encode()) + _encode_value(
                        Field(2, "", f.type), v, at)
                out += _put_bytes(f.number, entry)
        elif f.repeated:
            if not isinstance(value, list):
                raise Unencodable(f"{at}: not a list")
            for item in value:
                out += _encode_value(f, item, at)
        else:
            out += _encode_value(f, value, at)
    return bytes(out)


# ---- the envelope ----

def message_for(api_version: str, kind: str) -> str | None:
    """The table that encodes `kind` of `api_version`, lists included."""
    name = KIND_MESSAGES.get((api_version, kind))
    if name is None and kind.endswith("List") and (api_version, kind[:-4]) in KIND_MESSAGES:
        name = "List:" + KIND_MESSAGES[(api_version, kind[:-4])]
    return name


def decode(body: bytes, expected: tuple[str, ...] = ()) -> dict[str, Any]:
    """The object in a protobuf request body, as JSON would carry it.

    `expected` lists the kinds the request may carry (empty: any kind the tables know).
    """
    if not body.startswith(MAGIC):
        raise Unsupported("not a Kubernetes protobuf envelope")
    envelope = {n: v for n, _, v in fields(body[len(MAGIC):])}
    type_meta, raw = envelope.get(1, b""), envelope.get(2, b"")
    if not isinstance(type_meta, bytes) or not isinstance(raw, bytes):
        raise Unsupported("malformed envelope")
    tm = {n: v for n, _, v in fields(type_meta)}
    api_version = _text(tm.get(1, b""), "apiVersion")  # type: ignore[arg-type]
    kind = _text(tm.get(2, b""), "kind")  # type: ignore[arg-type]
    name = message_for(api_version, kind)
    if name is None or (expected and kind not in expected):
        raise Unsupported(f"kind {kind or '?'} ({api_version or '?'}) is not decoded here")
    obj = _decode_any(raw, name, kind)
    return {"apiVersion": api_version, "kind": kind, **obj}


def _decode_any(raw: bytes, name: str, kind: str) -> dict[str, Any]:
    if not name.startswith("List:"):
        return decode_message(raw, name, kind)
    out: dict[str, Any] = {}
    for number, _, value in fields(raw):
        assert isinstance(value, bytes)
        if number == 1:
            out["metadata"] = decode_message(value, "ListMeta", f"{kind}.metadata")
        elif number == 2:
            out.setdefault("items", []).append(decode_message(value, name[5:], f"{kind}.items"))
        else:
            raise Unsupported(f"{kind}: field {number} is not known to the stand-in")
    out.setdefault("items", [])
    return out


def encode(obj: dict[str, Any]) -> bytes:
    """A response body for `obj` (an object, a list or a Status); Unencodable if it cannot."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    name = message_for(api_version, kind)
    if name is None:
        raise Unencodable(f"kind {kind} ({api_version}) has no protobuf table here")
    rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    if name.startswith("List:"):
        extra = set(rest) - {"metadata", "items"}
        if extra:
            raise Unencodable(f"{kind}: field {sorted(extra)[0]}")
        raw = _put_bytes(1, encode_message(rest.get("metadata") or {}, "ListMeta"))
        for item in rest.get("items") or []:
            item = {k: v for k, v in item.items() if k not in ("apiVersion", "kind")}
            raw += _put_bytes(2, encode_message(item, name[5:], f"{kind}.items"))
    else:
        raw = encode_message(rest, name, kind)
    type_meta = _put_bytes(1, api_version.encode()) + _put_bytes(2, kind.encode())
    return MAGIC + _put_bytes(1, type_meta) + _put_bytes(2, raw)


def watch_frame(event_type: str, obj: dict[str, Any]) -> bytes:
    """One event of a protobuf watch: a length-prefixed WatchEvent whose object is itself a
    protobuf envelope."""
    inner = encode(obj)
    event = _put_bytes(1, event_type.encode()) + _put_bytes(2, _put_bytes(1, inner))
    type_meta = _put_bytes(1, b"meta.k8s.io/v1") + _put_bytes(2, b"WatchEvent")
    payload = MAGIC + _put_bytes(1, type_meta) + _put_bytes(2, event)
    return struct.pack(">I", len(payload)) + payload
