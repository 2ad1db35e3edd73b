"""Proxies and streams of the API server stand-in.

- `services/[SCHEME:]NAME[:PORT]/proxy/PATH` (the form `kubectl proxy` users type, such as
  `services/https:kubernetes-dashboard:/proxy/`) picks a Ready pod behind the service, as the
  real server picks an endpoint, and answers in place of that pod's HTTP server: a small page
  naming the stand-in, the pod, its image and the path asked. 503 when no pod is Ready, 404 when
  there is no such service, 301 to add the slash after `/proxy` as the real one redirects.
- `pods/[SCHEME:]NAME[:PORT]/proxy/PATH` answers the same way for one Running pod.
- `nodes/NAME[:PORT]/proxy/PATH` is relayed to the node's kubelet stand-in (`/healthz`,
  `/pods`, `/configz`, `/containerLogs/...`), with the API server's kubelet client certificate.
- `pods/NAME/log` is relayed to the kubelet's `/containerLogs`, which serves its own record of
  the container (`podlogs.py`); `follow` streams.
- `pods/NAME/exec`, `attach` and `portforward` are refused with a message naming the stand-in:
  no container runs, so there is nothing to enter or forward to.
"""

from __future__ import annotations

import html
import http.client
import ssl
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from . import auth, resources
from .paths import BANNER
from .store import ApiError, Obj, Store, selector_match

SERVICES = resources.must("", "v1", "services")
PODS = resources.must("", "v1", "pods")
NODES = resources.must("", "v1", "nodes")
ENDPOINTS = resources.must("", "v1", "endpoints")
SUBRESOURCES = {"services": ("proxy",), "nodes": ("proxy",),
                "pods": ("proxy", "log", "exec", "attach", "portforward")}
STREAMS = {"exec": "run commands in", "attach": "attach to", "portforward": "forward ports to"}
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           500: "InternalError", 503: "ServiceUnavailable"}


class Handler(Protocol):
    """The part of the API server's request handler this module writes to."""

    path: str
    headers: Any
    wfile: Any
    close_connection: bool

    def send_response(self, code: int, message: str | None = None) -> None: ...
    def send_header(self, keyword: str, value: str) -> None: ...
    def end_headers(self) -> None: ...


class Api(Protocol):
    """The part of the API server this module reads: its store, flags and authorizer."""

    store: Store
    args: Any
    authorizer: auth.Authorizer


def handles(group: str, rest: list[str]) -> bool:
    """Whether `/api/v1/[namespaces/NS/]REST` is one of the routes served here."""
    return group == "" and len(rest) >= 3 and rest[2] in SUBRESOURCES.get(rest[0], ())


def split_id(text: str) -> tuple[str, str, str] | None:
    """`[scheme:]name[:port]` as the API server reads a proxy target; None when invalid."""
    parts = text.split(":")
    if len(parts) == 1:
        return "", parts[0], ""
    if len(parts) == 2:
        return "", parts[0], parts[1]
    if len(parts) == 3 and parts[0] in ("", "http", "https"):
        return parts[0], parts[1], parts[2]
    return None


def serve(h: Handler, api: Api, method: str, namespace: str, rest: list[str],
          user: auth.User, body: bytes) -> None:
    """Answer one proxy, log or stream request (authorized first, as any request)."""
    plural, ident, sub = rest[0], unquote(rest[1]), rest[2]
    parsed = split_id(ident) if sub == "proxy" else ("", ident, "")
    if parsed is None:
        raise ApiError(400, "BadRequest", f'invalid {plural[:-1]} request "{ident}"')
    scheme, name, port = parsed
    auth.authorize(api.authorizer, user, auth.Attributes(
        VERBS[method], "", plural, sub, namespace, name))
    url = urlsplit(h.path)
    if sub != "proxy":
        if len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub == "log":
            _logs(h, api, namespace, name, url.query)
        else:
            _refuse_stream(api.store, namespace, name, sub, url.query)
        return
    marker = f"/{plural}/{ident}/proxy"
    raw = unquote(url.path)
    tail = raw[raw.index(marker) + len(marker):] if marker in raw else ""
    if not tail and method == "GET":
        location = url.path + "/" + (f"?{url.query}" if url.query else "")
        _send(h, 301, f'<a href="{html.escape(location)}">Moved Permanently</a>.\n',
              "text/html; charset=utf-8", {"Location": location})
        return
    if plural == "nodes":
        _node_proxy(h, api, name, port, tail, url.query, method, body)
        return
    if plural == "services":
        pod, target = _service_backend(api.store, namespace, name, port)
        what = f"service {namespace}/{name}" + (f" port {port}" if port else "")
    else:
        pod, target = _pod_backend(api.store, namespace, name, port)
        what = f"pod {namespace}/{name}"
    _send(h, 200, _page(what, pod, scheme or "http", target, method, tail,
                        url.query), "text/html; charset=utf-8")


# ---- responses ----

def _send(h: Handler, code: int, body: bytes | str, ctype: str,
          headers: dict[str, str] | None = None) -> None:
    raw = body.encode() if isinstance(body, str) else body
    h.send_response(code)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(raw)))
    h.send_header("Cache-Control", "no-cache, private")
    for key, value in (headers or {}).items():
        h.send_header(key, value)
    h.end_headers()
    h.wfile.write(raw)


def _page(what: str, pod: Obj, scheme: str, target: str, method: str, path: str,
          query: str) -> str:
    meta, spec = pod["metadata"], pod["spec"]
    images = ", ".join(f"{c.get('image', '')} ({c['name']})" for c in spec.get("containers")
                       or [])
    asked = path or "/"
    if query:
        asked += "?" + query
    rows = [("Asked for", f"{method} {asked}"), ("Through", what),
            ("Pod", f"{meta['namespace']}/{meta['name']} on node {spec.get('nodeName', '')}"),
            ("Would answer at", f"{scheme}://{target}"), ("Image", images)]
    cells = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                      for k, v in rows)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sandbox stand-in: {html.escape(what)}</title></head>
<body>
<h1>Kubernetes sandbox stand-in</h1>
<p>This page comes from pifleet's {html.escape(BANNER)}. No container runs in the sandbox, so
the stand-in answers here in place of the pod's own HTTP server.</p>
<table>
{cells}
</table>
</body></html>
"""


# ---- backends ----

def _ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and bool(status.get("podIP")) and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []) and not pod["metadata"].get(
        "deletionTimestamp")


def _container_port(pod: Obj, target: Any) -> int | None:
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    for c in pod["spec"].get("containers") or []:
        for port in c.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


def _service_backend(store: Store, namespace: str, name: str, port: str) -> tuple[Obj, str]:
    """A Ready pod behind the service port, and its `ip:port`, or 503 as the real server."""
    svc = store.get(SERVICES, namespace, name)
    ports = (svc.get("spec") or {}).get("ports") or []
    wanted = port
    if port.isdigit():
        numbered = [p for p in ports if int(p.get("port", 0)) == int(port)]
        if not numbered:
            raise ApiError(503, "ServiceUnavailable",
                           f'no service port {port} found for service "{name}"')
        wanted = numbered[0].get("name") or ""
    chosen = [p for p in ports if (p.get("name") or "") == wanted]
    selector = (svc.get("spec") or {}).get("selector") or {}
    if chosen and selector:
        for pod in store.list(PODS, namespace)[0]:
            if not _ready(pod) or not selector_match({"matchLabels": selector},
                                                     pod["metadata"].get("labels") or {}):
                continue
            target = _container_port(pod, chosen[0].get("targetPort", chosen[0].get("port")))
            if target is not None:
                return pod, f"{pod['status']['podIP']}:{target}"
    raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')


def _pod_backend(store: Store, namespace: str, name: str, port: str) -> tuple[Obj, str]:
    pod = store.get(PODS, namespace, name)
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        raise ApiError(400, "BadRequest", "address not allowed")
    if not port:
        ports = [p for c in pod["spec"].get("containers") or [] for p in c.get("ports") or []]
        port = str(ports[0]["containerPort"]) if ports else "80"
    target = _container_port(pod, port)
    if target is None:
        raise ApiError(503, "ServiceUnavailable", f"error trying to reach service: "
                       f'no port named "{port}" in pod {name} ({BANNER})')
    if not _ready(pod):
        phase = (pod.get("status") or {}).get("phase", "Pending")
        raise ApiError(503, "ServiceUnavailable", f"error trying to reach service: pod {name} "
                       f"is {phase} and not Ready, nothing answers on {ip}:{target} "
                       f"({BANNER})")
    return pod, f"{ip}:{target}"


# ---- the kubelet ----

def _kubelet(api: Api, node_name: str, port: str = "") -> tuple[str, int]:
    node = api.store.get(NODES, "", node_name)
    status = node.get("status") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    address = addresses.get("InternalIP") or addresses.get("Hostname") or node_name
    default = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get(
        "Port", 10250)
    return str(address), int(port) if port.isdigit() else int(default)


def _kubelet_call(api: Api, address: str, port: int, method: str, path: str,
                  body: bytes = b"") -> tuple[http.client.HTTPSConnection,
                                              http.client.HTTPResponse]:
    """One request to a kubelet, with the API server's kubelet client certificate; as the
    real server without --kubelet-certificate-authority, the kubelet's own certificate is not
    checked."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    cert = getattr(api.args, "kubelet_client_certificate", "") or ""
    key = getattr(api.args, "kubelet_client_key", "") or ""
    if cert and key:
        ctx.load_cert_chain(cert, key)
    conn = http.client.HTTPSConnection(address, port, context=ctx, timeout=10)
    try:
        conn.request(method, path, body=body or None)
        return conn, conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ApiError(503, "ServiceUnavailable",
                       f"error trying to reach service: dial tcp {address}:{port}: "
                       f"connect: {reason.lower()}") from None


def _relay(h: Handler, resp: http.client.HTTPResponse) -> None:
    """Pass a kubelet's answer on; a chunked one (a followed log) chunk by chunk."""
    ctype = resp.getheader("Content-Type") or "text/plain; charset=utf-8"
    if resp.getheader("Transfer-Encoding", "").lower() != "chunked":
        _send(h, resp.status, resp.read(), ctype)
        return
    h.send_response(resp.status)
    h.send_header("Content-Type", ctype)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    try:
        while True:
            data = resp.read1(65536)
            if not data:
                break
            h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            h.wfile.flush()
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()
    finally:
        h.close_connection = True


def _node_proxy(h: Handler, api: Api, name: str, port: str, tail: str, query: str,
                method: str, body: bytes) -> None:
    address, kubelet_port = _kubelet(api, name, port)
    path = (tail or "/") + (f"?{query}" if query else "")
    conn, resp = _kubelet_call(api, address, kubelet_port, method, path, body)
    try:
        _relay(h, resp)
    finally:
        conn.close()


def _container(pod: Obj, query: dict[str, str]) -> str:
    spec = pod["spec"]
    names = [c["name"] for c in spec.get("containers") or []]
    inits = [c["name"] for c in spec.get("initContainers") or []]
    if query.get("container"):
        return query["container"]
    if len(names) == 1:
        return names[0]
    message = (f"a container name must be specified for pod {pod['metadata']['name']}, "
               f"choose one of: [{' '.join(names)}]")
    if inits:
        message += f" or one of the init containers: [{' '.join(inits)}]"
    raise ApiError(400, "BadRequest", message)


def _logs(h: Handler, api: Api, namespace: str, name: str, raw_query: str) -> None:
    pod = api.store.get(PODS, namespace, name)
    query = {k: v[-1] for k, v in parse_qs(raw_query).items()}
    container = _container(pod, query)
    node = pod["spec"].get("nodeName")
    if not node:
        raise ApiError(400, "BadRequest", f"pod {name} does not have a host assigned")
    address, port = _kubelet(api, node)
    options = urlencode({k: v for k, v in query.items() if k != "container"})
    path = f"/containerLogs/{namespace}/{name}/{container}" + (f"?{options}" if options else "")
    try:
        conn, resp = _kubelet_call(api, address, port, "GET", path)
    except ApiError as err:
        raise ApiError(500, "InternalError", f'Get "https://{address}:{port}{path}": '
                       f"{err.message.removeprefix('error trying to reach service: ')}") \
            from None
    try:
        if resp.status >= 400:
            text = resp.read().decode(errors="replace").strip()
            raise ApiError(resp.status, REASONS.get(resp.status, "InternalError"), text)
        _relay(h, resp)
    finally:
        conn.close()


def _refuse_stream(store: Store, namespace: str, name: str, sub: str, raw_query: str) -> None:
    pod = store.get(PODS, namespace, name)
    query = {k: v[-1] for k, v in parse_qs(raw_query).items()}
    if sub != "portforward":
        container = _container(pod, query)
        if container not in [c["name"] for c in pod["spec"].get("containers") or []]:
            raise ApiError(400, "BadRequest",
                           f"container {container} is not valid for pod {name}")
    raise ApiError(400, "BadRequest",
                   f"{BANNER}: pods/{sub} is not served: no container runs in the sandbox, "
                   f"so there is no process in pod {namespace}/{name} to {STREAMS[sub]}")

