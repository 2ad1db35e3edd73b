"""What each path does: public endpoints, discovery, the verbs on resources, subresources, watch.

Requests are parsed into a `Request` (who, which resource, which verb), authorized, then handed
to a route. Subresources other than `status` have their own routes in `SUBRESOURCE_ROUTES`,
keyed by (plural or "*", subresource); other modules register theirs with `subresource()`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from . import auth, media, openapi, protobuf, proxy, resources, reviews, tables
from .api import version_info
from .resources import Kind
from .store import ApiError, Obj

if TYPE_CHECKING:
    from .api import ApiServer
    from .apiserver import Handler

TableFor = Callable[[media.MediaRange], Obj | None]
Route = Callable[["Request"], None]
METHOD_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update",
                "PATCH": "patch", "DELETE": "delete"}
SUBRESOURCE_ROUTES: dict[tuple[str, str], Route] = {}
FIELD_VALIDATION = ("Ignore", "Warn", "Strict")


def subresource(plural: str, sub: str) -> Callable[[Route], Route]:
    """Register the route of `plural/sub` (plural "*" for every kind that has `sub`)."""
    def register(fn: Route) -> Route:
        SUBRESOURCE_ROUTES[(plural, sub)] = fn
        return fn
    return register


@dataclass
class Request:
    """One API request, parsed and authenticated."""

    handler: Handler
    method: str
    path: str
    query: dict[str, list[str]]
    user: auth.User
    verb: str = ""
    kind: Kind | None = None
    namespace: str = ""
    name: str = ""
    sub: str = ""
    tail: str = ""  # what follows the subresource in the path (proxy paths)
    _doc: Obj | None = field(default=None, repr=False)

    @property
    def api(self) -> ApiServer:
        """The server's state and verbs."""
        return self.handler.api

    def q(self, key: str, default: str = "") -> str:
        """The last value of a query parameter."""
        values = self.query.get(key)
        return values[-1] if values else default

    @property
    def ns(self) -> str:
        """The namespace the object lives in ('' for cluster-scoped kinds)."""
        return self.namespace if self.kind is not None and self.kind.namespaced else ""

    @property
    def dry_run(self) -> bool:
        """`dryRun=All`: check and answer, store nothing. Any other value is refused."""
        values = [v for v in self.query.get("dryRun", []) if v]
        for v in values:
            if v != "All":
                raise ApiError(400, "BadRequest", f'Invalid dryRun value: "{v}": supported '
                               'values: "All"')
        return bool(values)

    @property
    def manager(self) -> str:
        """The field manager: as named, else the client's program name (as the real server)."""
        return self.q("fieldManager") or \
            self.handler.headers.get("User-Agent", "").split("/")[0]

    def raw_body(self) -> bytes:
        """The body as sent."""
        return self.handler.read_body()

    def body(self, *kinds: str) -> Obj:
        """The body as an object; a protobuf body must carry one of `kinds`."""
        if self._doc is None:
            what = self.kind.qualified if self.kind else self.path
            self._doc = media.decode_body(self.raw_body(),
                                          self.handler.headers.get("Content-Type", ""),
                                          kinds, what)
        return self._doc

    def send(self, code: int, doc: Obj, table: TableFor | None = None) -> None:
        """Answer with an object, in the encoding the client accepts."""
        self.handler.send_object(code, doc, table)


def not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource")


# ---- entry point ----

def route(handler: Handler, method: str) -> None:
    """Parse, authenticate, authorize and answer one request."""
    url = urlsplit(handler.path)
    path = url.path.rstrip("/") or "/"
    query = parse_qs(url.query, keep_blank_values=True)
    req = Request(handler, method, path, query, handler.user())
    mode = req.q("fieldValidation") or "Warn"
    if mode not in FIELD_VALIDATION:
        raise ApiError(400, "BadRequest", f'fieldValidation: Unsupported value: "{mode}": '
                       'supported values: "Ignore", "Strict", "Warn"')
    req.api.context.field_validation = mode
    segs = [s for s in path.split("/") if s]
    if segs[:2] == ["api", "v1"] and len(segs) > 2:
        _resource(req, "", "v1", segs[2:], url.path)
    elif segs[:1] == ["apis"] and len(segs) > 3:
        _resource(req, segs[1], segs[2], segs[3:], url.path)
    else:
        _non_resource(req, segs)


def _non_resource(req: Request, segs: list[str]) -> None:
    verb = "get" if req.method in ("GET", "HEAD") else METHOD_VERBS.get(req.method, "")
    auth.authorize(req.api.authorizer, req.user, auth.Attributes(verb=verb, path=req.path))
    if req.method not in ("GET", "HEAD"):
        raise method_not_allowed()
    if req.path == "/version":
        req.send(200, version_info())
        return
    if req.path in ("/healthz", "/livez", "/readyz"):
        req.handler.send_text(200, "ok")
        return
    doc: Obj | None = None
    if req.path in ("/api", "/apis") and _wants_aggregated(req):
        doc = resources.aggregated_discovery(legacy=req.path == "/api")
        req.handler.send_raw(200, json.dumps(doc, separators=(",", ":")).encode(),
                             resources.DISCOVERY_V2)
        return
    if req.path == "/api":
        doc = resources.api_versions(req.api.address)
    elif req.path == "/apis":
        doc = resources.api_group_list()
    elif req.path == "/api/v1":
        doc = resources.resource_list("", "v1")
    elif len(segs) == 2 and segs[0] == "apis":
        doc = resources.api_group(segs[1])
    elif len(segs) == 3 and segs[0] == "apis":
        doc = resources.resource_list(segs[1], segs[2])
    elif req.path == "/openapi/v2":
        if OPENAPI_V2_PROTOBUF in req.handler.headers.get("Accept", ""):
            req.handler.send_raw(200, openapi.v2_protobuf(), "application/octet-stream")
            return
        doc = openapi.v2_json()
    elif req.path == "/openapi/v3":
        doc = openapi.v3_root()
    elif segs[:3] == ["openapi", "v3", "api"] and segs[3:] == ["v1"]:
        doc = openapi.v3_group_version("", "v1")
    elif segs[:3] == ["openapi", "v3", "apis"] and len(segs) == 5:
        doc = openapi.v3_group_version(segs[3], segs[4])
    if doc is None:
        raise not_found()
    req.send(200, doc)


def _wants_aggregated(req: Request) -> bool:
    """Whether the client prefers aggregated discovery (v2) to the legacy documents."""
    for wanted in media.parse_accept(req.handler.headers.get("Accept", "")):
        if wanted.as_ == "APIGroupDiscoveryList":
            return wanted.params.get("g") == "apidiscovery.k8s.io" and \
                wanted.params.get("v") == "v2"
        if wanted.type in (media.JSON, "*/*", "application/*", media.PROTOBUF):
            return False
    return False


# What kubectl asks /openapi/v2 for; the real server answers it as application/octet-stream.
OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def _resource(req: Request, group: str, version: str, rest: list[str], raw_path: str) -> None:
    if (len(rest) >= 3 and rest[0] == "namespaces"
            and resources.find(group, version, rest[2]) is not None):
        req.namespace, rest = rest[1], rest[2:]
    if proxy.handles(group, rest):  # proxies, logs and streams: proxy.py
        proxy.serve(req.handler, req.api, req.method, req.namespace, rest, req.user,
                    req.raw_body())
        return
    kind = resources.find(group, version, rest[0])
    if kind is None:
        raise not_found()
    req.kind = kind
    if (group, kind.plural) == ("", "endpoints"):
        req.api.context.warnings.append("v1 Endpoints is deprecated in v1.33+; use "
                                        "discovery.k8s.io/v1 EndpointSlice")
    req.name = rest[1] if len(rest) > 1 else ""
    req.sub = rest[2] if len(rest) > 2 else ""
    if req.sub:
        routed = (kind.plural, req.sub) in SUBRESOURCE_ROUTES or ("*", req.sub) in \
            SUBRESOURCE_ROUTES
        if req.sub not in kind.subresources or (len(rest) > 3 and not routed):
            raise not_found()
        marker = f"/{req.name}/{req.sub}"
        req.tail = raw_path[raw_path.index(marker) + len(marker):] if marker in raw_path else ""
    if kind.namespaced and req.namespace == "" and req.method != "GET" and req.name:
        raise not_found()
    req.verb = METHOD_VERBS.get(req.method, "")
    if req.method in ("GET", "HEAD") and (not req.name or req.q("watch") in ("1", "true")):
        req.verb = "watch" if req.q("watch") in ("1", "true") else "list"
    elif req.method == "DELETE" and not req.name:
        req.verb = "deletecollection"
    fields = req.q("fieldSelector")
    name = req.name
    if not name and req.verb in ("list", "watch"):
        name = auth.selected_name(fields)  # as the real server: a list of one named object
    auth.authorize(req.api.authorizer, req.user, auth.Attributes(
        verb=req.verb, group=group, resource=kind.plural, subresource=req.sub,
        namespace=req.namespace, name=name, field_selector=fields,
        label_selector=req.q("labelSelector")))
    if not req.verb:
        raise method_not_allowed()
    special = SUBRESOURCE_ROUTES.get((kind.plural, req.sub)) or SUBRESOURCE_ROUTES.get(
        ("*", req.sub)) if req.sub else None
    if special is not None:
        special(req)
    elif not kind.stored:
        if req.verb != "create" or req.name:
            raise method_not_allowed()
        req.send(201, reviews.review(req.api, kind, req.body(kind.kind), req.user,
                                     req.namespace))
    elif req.verb not in kind.verbs:
        err = method_not_allowed()
        err.message += f" (sandbox stand-in: {kind.qualified} are not served, only listed)"
        raise err
    else:
        VERB_ROUTES[req.verb](req)


# ---- the verbs ----

def _table_for(req: Request, doc: Obj) -> TableFor:
    assert req.kind is not None
    kind = req.kind
    listing = "items" in doc and str(doc.get("kind", "")).endswith("List")

    def convert(wanted: media.MediaRange) -> Obj | None:
        if wanted.params.get("g") != "meta.k8s.io" or wanted.params.get("v") not in (
                "v1", "v1beta1"):
            return None
        if wanted.as_ == "Table":
            items = doc["items"] if listing else [doc]
            meta = doc.get("metadata", {}) if listing else {
                "resourceVersion": doc.get("metadata", {}).get("resourceVersion", "")}
            out = tables.table(kind.kind, items, meta, req.q("includeObject", "Metadata"))
            out["apiVersion"] = f"meta.k8s.io/{wanted.params['v']}"
            return out
        if wanted.as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            return tables.partial(doc, listing)
        return None

    return convert


def _get(req: Request) -> None:
    assert req.kind is not None
    obj = req.api.get(req.kind, req.ns, req.name)
    req.send(200, obj, _table_for(req, obj))


def _list(req: Request) -> None:
    assert req.kind is not None
    limit = req.q("limit")
    if limit and not limit.isdigit():
        raise ApiError(400, "BadRequest", f"invalid limit {limit!r}")
    doc = req.api.list(req.kind, req.ns, req.q("labelSelector"), req.q("fieldSelector"),
                       int(limit or 0), req.q("continue"))
    req.send(200, doc, _table_for(req, doc))


def _create(req: Request) -> None:
    assert req.kind is not None
    if req.name:
        raise method_not_allowed()
    doc = req.body(req.kind.kind)
    check_type(req.kind, doc)
    req.send(201, req.api.create(req.kind, doc, req.namespace, req.user, req.manager,
                                 req.dry_run))


def _update(req: Request) -> None:
    assert req.kind is not None
    if not req.name:
        raise method_not_allowed()
    doc = req.body(req.kind.kind)
    check_type(req.kind, doc)
    req.send(200, req.api.update(req.kind, doc, req.namespace, req.name, req.sub, req.user,
                                 req.manager, req.dry_run))


def _patch(req: Request) -> None:
    assert req.kind is not None
    if not req.name:
        raise method_not_allowed()
    code, obj = req.api.patch(req.kind, req.namespace, req.name, req.sub,
                              req.handler.headers.get("Content-Type", ""), req.raw_body(),
                              req.q("fieldManager"), req.q("force") in ("true", "1"), req.user,
                              req.manager, req.dry_run)
    req.send(code, obj)


def delete_options(req: Request) -> Obj:
    """The DeleteOptions of a DELETE: its body (JSON or protobuf) and query parameters."""
    options = req.body("DeleteOptions") if req.raw_body() else {}
    for key in ("gracePeriodSeconds", "propagationPolicy", "orphanDependents"):
        if req.q(key):
            options[key] = int(req.q(key)) if key == "gracePeriodSeconds" else req.q(key)
    return options


def _delete(req: Request) -> None:
    assert req.kind is not None
    options = delete_options(req)
    dry = req.dry_run or "All" in (options.get("dryRun") or [])
    req.send(200, req.api.delete(req.kind, req.ns, req.name, options, req.user, dry))


def _delete_collection(req: Request) -> None:
    assert req.kind is not None
    options = delete_options(req)
    dry = req.dry_run or "All" in (options.get("dryRun") or [])
    req.send(200, req.api.delete_collection(req.kind, req.ns, req.q("labelSelector"),
                                            req.q("fieldSelector"), req.user, dry))


def check_type(kind: Kind, doc: Obj) -> None:
    """The body's kind and apiVersion, when given, must be the URL's."""
    if doc.get("apiVersion") not in (None, kind.api_version):
        raise ApiError(400, "BadRequest", f"the API version in the data "
                       f"({doc.get('apiVersion')}) does not match the expected API version "
                       f"({kind.api_version})")
    if doc.get("kind") not in (None, kind.kind):
        raise ApiError(400, "BadRequest", f"the kind in the data ({doc.get('kind')}) does not "
                       f"match the expected kind ({kind.kind})")


# ---- watch ----

def _watch(req: Request) -> None:
    assert req.kind is not None
    kind, api = req.kind, req.api
    labels, fields = req.q("labelSelector"), req.q("fieldSelector")
    if req.name:
        fields = ",".join(x for x in (fields, f"metadata.name={req.name}") if x)
    since = req.q("resourceVersion")
    start = int(since) if since.isdigit() and since != "0" else None
    timeout = float(req.q("timeoutSeconds") or 1800)
    initial: list[Obj] = []
    bookmark = req.q("sendInitialEvents") == "true"
    if start is None or bookmark:
        # No resourceVersion (or a watch-list): every current object first, as ADDED.
        listed = api.list(kind, req.ns, labels, fields)
        initial, start = listed["items"], int(listed["metadata"]["resourceVersion"])
    encode = _watch_encoder(req)
    req.handler.start_stream(encode.content_type)
    events: Iterator[tuple[str, Obj]] = iter([("ADDED", o) for o in initial])
    try:
        for event_type, obj in events:
            req.handler.write_chunk(encode(event_type, obj))
        if bookmark:
            mark = {"kind": kind.kind, "apiVersion": kind.api_version, "metadata": {
                "resourceVersion": str(start),
                "annotations": {"k8s.io/initial-events-end": "true"}}}
            req.handler.write_chunk(encode("BOOKMARK", mark))
        for event_type, obj in api.store.watch(kind, start, req.ns, labels, fields, timeout):
            if event_type:
                req.handler.write_chunk(encode(event_type, obj))
    except ApiError as err:
        req.handler.write_chunk(encode("ERROR", err.status()))
    req.handler.write_chunk(b"")
    req.handler.close_connection = True


class _Encoder:
    """Encodes watch events in the negotiated form."""

    def __init__(self, content_type: str, fn: Callable[[str, Obj], bytes]) -> None:
        self.content_type, self.fn = content_type, fn

    def __call__(self, event_type: str, obj: Obj) -> bytes:
        return self.fn(event_type, obj)


def _watch_encoder(req: Request) -> _Encoder:
    assert req.kind is not None
    kind = req.kind
    accept = req.handler.headers.get("Accept", "")
    for wanted in media.parse_accept(accept):
        if wanted.as_ == "Table" and wanted.params.get("g") == "meta.k8s.io":
            version = wanted.params.get("v", "v1")

            def as_table(event_type: str, obj: Obj, version: str = version) -> bytes:
                if obj.get("kind") != "Status" and event_type != "BOOKMARK":
                    obj = tables.table(kind.kind, [obj], {"resourceVersion": obj.get(
                        "metadata", {}).get("resourceVersion", "")}, req.q("includeObject",
                                                                          "Metadata"))
                    obj["apiVersion"] = f"meta.k8s.io/{version}"
                return json.dumps({"type": event_type, "object": obj}).encode() + b"\n"

            return _Encoder(media.JSON, as_table)
        if wanted.type == media.PROTOBUF and not wanted.as_:
            def as_protobuf(event_type: str, obj: Obj) -> bytes:
                try:
                    return protobuf.watch_frame(event_type, obj)
                except protobuf.Unencodable as exc:
                    status = ApiError(500, "InternalError", f"the sandbox stand-in cannot "
                                      f"encode this object as protobuf: {exc}").status()
                    return protobuf.watch_frame("ERROR", status)

            return _Encoder(f"{media.PROTOBUF};stream=watch", as_protobuf)
        if wanted.type in (media.JSON, "*/*", "application/*") and not wanted.as_:
            return _Encoder(media.JSON, lambda t, o: json.dumps(
                {"type": t, "object": o}).encode() + b"\n")
    raise media.not_acceptable(accept)


VERB_ROUTES: dict[str, Route] = {
    "get": _get, "list": _list, "watch": _watch, "create": _create, "update": _update,
    "patch": _patch, "delete": _delete, "deletecollection": _delete_collection,
}


# ---- subresources ----

@subresource("*", "status")
@subresource("*", "approval")
@subresource("*", "finalize")
def _status(req: Request) -> None:
    if req.verb not in ("get", "update", "patch"):
        raise method_not_allowed()
    VERB_ROUTES[req.verb](req)


@subresource("serviceaccounts", "token")
def _token(req: Request) -> None:
    if req.verb != "create":
        raise method_not_allowed()
    req.send(201, req.api.token_request(req.namespace, req.name, req.body("TokenRequest"),
                                        req.dry_run, req.user))


@subresource("pods", "eviction")
def _eviction(req: Request) -> None:
    if req.verb != "create":
        raise method_not_allowed()
    doc = req.body("Eviction")
    dry = req.dry_run or "All" in ((doc.get("deleteOptions") or {}).get("dryRun") or [])
    req.send(201, req.api.evict(req.namespace, req.name, doc, req.user, dry))


@subresource("*", "scale")
def _scale(req: Request) -> None:
    assert req.kind is not None
    api = req.api
    if req.verb == "get":
        req.send(200, api.scale(req.kind, req.namespace, req.name))
    elif req.verb == "update":
        req.send(200, api.set_scale(req.kind, req.namespace, req.name, req.body("Scale"),
                                    req.user, req.manager, req.dry_run))
    elif req.verb == "patch":
        req.send(200, api.patch_scale(req.kind, req.namespace, req.name,
                                      req.handler.headers.get("Content-Type", ""),
                                      req.raw_body(), req.user, req.manager, req.dry_run))
    else:
        raise method_not_allowed()

