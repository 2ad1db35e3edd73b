"""Media types: decoding request bodies and choosing a response encoding from `Accept`.

As the real server: JSON, YAML and protobuf bodies; responses in JSON, YAML or protobuf, as a
`meta.k8s.io` Table when kubectl asks (`application/json;as=Table;v=v1;g=meta.k8s.io`), or as
PartialObjectMetadata(List). Bodies are capped at 3 MiB (413 above), and a body that does not
parse (bad JSON, invalid UTF-8, nesting too deep) is a 400, never a 500.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import protobuf
from .store import ApiError, Obj

MAX_BODY = 3 * 1024 * 1024  # the real server's limit for request bodies
JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = protobuf.CONTENT_TYPE
SUPPORTED = f"{JSON}, {YAML}, {PROTOBUF}"
# Nesting beyond this is refused (400): far deeper than any real object, and shallow enough
# that the recursive code behind the decoder (patches, encoders) never meets Python's limit.
MAX_DEPTH = 100


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header."""

    type: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def as_(self) -> str:
        """The `as=` conversion asked for (Table, PartialObjectMetadata...), or ''."""
        return self.params.get("as", "")


def parse_accept(header: str) -> list[MediaRange]:
    """Entries of an Accept header in preference order (by q, then as written)."""
    entries: list[tuple[float, int, MediaRange]] = []
    for i, part in enumerate(p for p in (header or "").split(",") if p.strip()):
        bits = [b.strip() for b in part.split(";")]
        params = {}
        for b in bits[1:]:
            k, _, v = b.partition("=")
            params[k.strip().lower()] = v.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            entries.append((-q, i, MediaRange(bits[0].lower(), params)))
    entries.sort(key=lambda e: (e[0], e[1]))
    return [e[2] for e in entries] or [MediaRange(JSON)]


def not_acceptable(header: str) -> ApiError:
    """406, as the real server words it."""
    return ApiError(406, "NotAcceptable", f"only the following media types are accepted: "
                    f"{SUPPORTED} (sandbox stand-in; asked for {header!r})")


# ---- request bodies ----

def _depth_ok(value: Any, limit: int = MAX_DEPTH) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def decode_body(body: bytes, content_type: str, kinds: tuple[str, ...] = (),
                what: str = "") -> Obj:
    """The object in a request body; 400 if it does not parse, 415 for an unknown encoding.

    `kinds` are the kinds a protobuf body may carry; `what` names the resource for messages.
    """
    media = (content_type or JSON).split(";")[0].strip().lower()
    if media == PROTOBUF:
        try:
            return protobuf.decode(body, kinds)
        except protobuf.Unsupported as exc:
            raise ApiError(415, "UnsupportedMediaType",
                           f"the sandbox stand-in cannot decode this protobuf body for {what}: "
                           f"{exc}; send it as {JSON} or {YAML} instead") from None
    if media not in (JSON, YAML, "application/yml", "text/yaml", "*/*", ""):
        raise ApiError(415, "UnsupportedMediaType",
                       f"the body of the request was in an unknown format - accepted media "
                       f"types include: {SUPPORTED} (sandbox stand-in; got {media} for {what})")
    return parse_document(body, yaml_allowed=media != JSON)


def parse_document(body: bytes, yaml_allowed: bool = True) -> Obj:
    """A JSON (or YAML) object from bytes: 400 for anything that is not one."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "BadRequest", f"the request body is not valid UTF-8: {exc}") from None
    try:
        doc = json.loads(text) if not yaml_allowed or text.lstrip()[:1] in ("{", "[") \
            else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        raise ApiError(400, "BadRequest", f"the request body does not parse: {exc}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ApiError(400, "BadRequest", "the request body must be an object")
    if not _depth_ok(doc):
        raise ApiError(400, "BadRequest", "the request body is nested too deeply (more than "
                       f"{MAX_DEPTH} levels)")
    return doc


# ---- responses ----

def render(doc: Obj, media: MediaRange) -> tuple[bytes, str] | None:
    """`doc` encoded as `media` asks, or None when that encoding cannot carry it."""
    if media.type == PROTOBUF:
        try:
            return protobuf.encode(doc), PROTOBUF
        except protobuf.Unencodable:
            return None
    if media.type in (YAML, "application/yml"):
        return yaml.safe_dump(doc, sort_keys=False).encode(), YAML
    if media.type in (JSON, "*/*", "application/*"):
        return json.dumps(doc, separators=(",", ":")).encode(), JSON
    return None
