"""The API server stand-in: HTTPS on :6443 with the routes, auth and errors kubectl expects.

`kubeadm init` writes `/etc/kubernetes/manifests/kube-apiserver.yaml` like the real one; the
`kube-apiserver-standin` service reads its flags from that manifest (and the controller-manager's
for the pod CIDR), so the files on the node tell the truth about what runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import ssl
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from cryptography import x509

from . import auth, controllers, paths, pki, protobuf, proxy, resources, services
from .api import ApiServer, version_info
from .paths import BANNER, git_version
from .resources import Kind
from .store import ApiError, Obj

log = logging.getLogger("kube-apiserver-standin")


# ---- HTTP ----

class Handler(BaseHTTPRequestHandler):
    """Routes one HTTP request to the ApiServer."""

    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver-standin"
    api: ApiServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _send(self, code: int, obj: Obj | str) -> None:
        raw = (obj if isinstance(obj, str) else json.dumps(obj)).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8" if isinstance(obj, str)
                         else "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(raw)

    def _user(self) -> auth.User:
        subject = None
        cert = self.connection.getpeercert(binary_form=True)
        if cert:
            subject = pki.subject_of(x509.load_der_x509_certificate(cert).public_bytes(
                pki.serialization.Encoding.PEM))
        bearer = self.headers.get("Authorization", "")
        bearer = bearer[7:].strip() if bearer.lower().startswith("bearer ") else ""
        return auth.authenticate(self.api.store, subject, bearer, self.api.sa_pub)

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            if "protobuf" in self.headers.get("Content-Type", ""):
                body = self._from_protobuf(body)
            self._route(method, body)
        except ApiError as err:
            self._send(err.code, err.status())
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as exc:  # the server stays up and answers like the real one
            log.exception("internal error")
            self._send(500, ApiError(500, "InternalError", f"Internal error occurred: {exc}")
                       .status())

    def _from_protobuf(self, body: bytes) -> bytes:
        """kubectl's typed commands send protobuf: decode the kinds they create, as JSON."""
        path = urlsplit(self.path).path.rstrip("/").split("/")
        kind = None
        for k in resources.KINDS:
            if k.plural in path[-3:]:
                kind = k
        wanted = "TokenRequest" if path[-1] == "token" else kind.kind if kind else ""
        try:
            return json.dumps(protobuf.decode(body, wanted)).encode()
        except protobuf.Unsupported as exc:
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an "
                           "unknown format - accepted media types include: application/json, "
                           "application/yaml (sandbox stand-in: protobuf is decoded only for "
                           f"{', '.join(sorted(protobuf.KINDS))}; {exc})") from None

    def _route(self, method: str, body: bytes) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path.rstrip("/") or "/"
        user = self._user()
        segs = [s for s in path.split("/") if s]
        verb = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}[method]
        if path in auth.PUBLIC_PATHS:
            auth.authorize(self.api.store, user, verb, path=path)
            self._send(200, version_info() if path == "/version" else "ok")
            return
        if segs[:2] == ["api", "v1"] and len(segs) > 2:
            group, version, rest = "", "v1", segs[2:]
        elif segs and segs[0] == "apis" and len(segs) > 3:
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            auth.authorize(self.api.store, user, verb, path=path)
            self._discovery(path, segs)
            return
        namespace = ""
        if (len(rest) >= 3 and rest[0] == "namespaces"
                and resources.find(group, version, rest[2]) is not None):
            namespace, rest = rest[1], rest[2:]
        if proxy.handles(group, rest):  # proxies, logs and streams: proxy.py
            proxy.serve(self, self.api, method, namespace, rest, user, body)
            return
        kind = resources.find(group, version, rest[0])
        if kind is None or len(rest) > 3 or (len(rest) == 3 and rest[2] not in kind.subresources):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if method == "GET" and not name:
            verb = "watch" if query.get("watch") in ("1", "true") else "list"
        resource = f"{kind.plural}/{sub}" if sub else kind.plural
        auth.authorize(self.api.store, user, verb, group=group, resource=resource,
                       namespace=namespace, name=name)
        self._resource(method, verb, kind, namespace, name, sub, query, body, user)

    def _discovery(self, path: str, segs: list[str]) -> None:
        doc: Obj | None = None
        if path == "/api":
            doc = resources.api_versions(self.api.address)
        elif path == "/apis":
            doc = resources.api_group_list()
        elif path == "/api/v1":
            doc = resources.resource_list("", "v1")
        elif len(segs) == 2 and segs[0] == "apis":
            doc = resources.api_group(segs[1])
        elif len(segs) == 3 and segs[0] == "apis":
            doc = resources.resource_list(segs[1], segs[2])
        elif path == "/openapi/v3":
            doc = resources.openapi_root()
        elif segs[:3] == ["openapi", "v3", "api"] and segs[3:] == ["v1"]:
            doc = resources.openapi_group_version("", "v1")
        elif segs[:3] == ["openapi", "v3", "apis"] and len(segs) == 5:
            doc = resources.openapi_group_version(segs[3], segs[4])
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        self._send(200, doc)

    def _wants_table(self) -> bool:
        return "as=Table" in self.headers.get("Accept", "")

    def _resource(self, method: str, verb: str, kind: Kind, namespace: str, name: str,
                  sub: str, query: dict[str, str], body: bytes, user: auth.User) -> None:
        api, store = self.api, self.api.store
        ns = namespace if kind.namespaced else ""
        # As the real server: the named field manager, else the client's program name.
        manager = query.get("fieldManager") or self.headers.get("User-Agent", "").split("/")[0]
        if verb == "list":
            items, rv = store.list(kind, ns, query.get("labelSelector", ""),
                                   query.get("fieldSelector", ""))
            if self._wants_table():
                self._send(200, resources.table(kind.kind, items, rv))
            else:
                self._send(200, {"kind": kind.kind + "List", "apiVersion": kind.api_version,
                                 "metadata": {"resourceVersion": rv}, "items": items})
        elif verb == "watch":
            self._watch(kind, ns, query)
        elif verb == "get":
            obj = store.get(kind, ns, name)
            if kind.kind == "ConfigMap" and (ns, name) == ("kube-public", "cluster-info"):
                obj = api.sign_cluster_info(obj)
            if self._wants_table():
                self._send(200, resources.table(kind.kind, [obj], obj["metadata"][
                    "resourceVersion"]))
            else:
                self._send(200, obj)
        elif method == "POST":
            doc = json.loads(body or b"{}")
            if sub == "token" and kind.kind == "ServiceAccount":
                self._send(201, api.token_request(namespace, name, doc))
            elif name:
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource")
            else:
                self._check_body(kind, doc)
                self._send(201, api.create(kind, doc, namespace, user, manager))
        elif method == "PUT":
            doc = json.loads(body or b"{}")
            self._check_body(kind, doc)
            self._send(200, api.update(kind, doc, namespace, name, sub, manager))
        elif method == "PATCH":
            code, obj = api.patch(kind, namespace, name, sub,
                                  self.headers.get("Content-Type", ""), body, query, user,
                                  manager)
            self._send(code, obj)
        elif method == "DELETE":
            obj = store.delete(kind, ns, name)
            if kind.kind == "Namespace":
                controllers.delete_namespace(store, name)
            self._send(200, obj)

    @staticmethod
    def _check_body(kind: Kind, doc: Obj) -> None:
        if doc.get("kind") not in (None, kind.kind) or doc.get("apiVersion") not in (
                None, kind.api_version):
            raise ApiError(400, "BadRequest", f"the API version in the data "
                           f"({doc.get('apiVersion')}) does not match the expected API version "
                           f"({kind.api_version})")

    def _watch(self, kind: Kind, ns: str, query: dict[str, str]) -> None:
        since = query.get("resourceVersion") or ""
        start = int(since) if since.isdigit() and since != "0" else None
        timeout = float(query.get("timeoutSeconds") or 1800)
        table = self._wants_table()
        labels, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")
        initial: list[Obj] = []
        if start is None:
            # No resourceVersion: the real server first sends every object as ADDED.
            initial, rv = self.api.store.list(kind, ns, labels, fields)
            start = int(rv)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        events: Iterator[tuple[str, Obj]] = iter([("ADDED", o) for o in initial])
        try:
            for kind_type, obj in _chain(events, self.api.store.watch(
                    kind, start, ns, labels, fields, timeout)):
                if not kind_type:
                    continue
                if table:
                    obj = resources.table(kind.kind, [obj], obj["metadata"]["resourceVersion"])
                self._chunk(json.dumps({"type": kind_type, "object": obj}).encode() + b"\n")
        except ApiError as err:
            self._chunk(json.dumps({"type": "ERROR", "object": err.status()}).encode() + b"\n")
        self._chunk(b"")
        self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _chain(*its: Iterator[tuple[str, Obj]]) -> Iterator[tuple[str, Obj]]:
    for it in its:
        yield from it


def _manifest_flags(directory: Path) -> list[str]:
    """The flags in the static-pod manifests kubeadm wrote (apiserver, controller-manager)."""
    flags: list[str] = []
    for name in ("kube-apiserver.yaml", "kube-controller-manager.yaml"):
        path = directory / name
        if path.exists():
            pod = yaml.safe_load(path.read_text())
            flags += [a for a in pod["spec"]["containers"][0]["command"][1:]
                      if a.startswith("--")]
    return flags


def parser() -> argparse.ArgumentParser:
    """kube-apiserver's flags that the stand-in honours (plus two controller-manager ones)."""
    ap = argparse.ArgumentParser(prog="kube-apiserver", description=BANNER)
    ap.add_argument("--manifests", help="read flags from kubeadm's static-pod manifests here")
    ap.add_argument("--advertise-address", default="127.0.0.1")
    ap.add_argument("--bind-address", default="0.0.0.0")
    ap.add_argument("--secure-port", type=int, default=6443)
    ap.add_argument("--tls-cert-file")
    ap.add_argument("--tls-private-key-file")
    ap.add_argument("--client-ca-file")
    ap.add_argument("--service-account-key-file")
    ap.add_argument("--service-account-signing-key-file")
    ap.add_argument("--service-cluster-ip-range", default="10.96.0.0/12")
    ap.add_argument("--cluster-cidr", default="")
    ap.add_argument("--cluster-signing-key-file", default="")
    ap.add_argument("--state-file", default="", help="stand-in: where the objects persist")
    ap.add_argument("--node-monitor-grace-period", default="40s")
    ap.add_argument("--kubelet-client-certificate", default="")
    ap.add_argument("--kubelet-client-key", default="")
    ap.add_argument("--default-not-ready-toleration-seconds", type=int, default=300)
    ap.add_argument("--default-unreachable-toleration-seconds", type=int, default=300)
    return ap


def serve(args: argparse.Namespace, ready: threading.Event | None = None,
          stop: threading.Event | None = None) -> None:
    """Run until `stop` is set (or forever)."""
    api = ApiServer(args)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls_cert_file, args.tls_private_key_file)
    ctx.load_verify_locations(args.client_ca_file)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    handler = type("BoundHandler", (Handler,), {"api": api})
    httpd = ThreadingHTTPServer((args.bind_address, args.secure_port), handler)
    httpd.daemon_threads = True
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    stop = stop or threading.Event()
    grace = float(args.node_monitor_grace_period.rstrip("s"))
    loop = threading.Thread(target=controllers.run, args=(api, stop, grace), daemon=True)
    loop.start()
    server = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                              daemon=True)
    server.start()
    log.info("%s: kube-apiserver %s listening on %s:%s", BANNER, git_version(),
             args.bind_address, args.secure_port)
    if ready is not None:
        ready.set()
    try:
        stop.wait()
    finally:
        httpd.shutdown()
        httpd.server_close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `kube-apiserver-standin` service."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    argv = list(sys.argv[1:] if argv is None else argv)
    first, _ = parser().parse_known_args(argv)
    if first.manifests:
        argv = _manifest_flags(Path(first.manifests)) + argv
        # The version is the image kubeadm wrote (and `kubeadm upgrade apply` rewrites).
        paths.set_version(services.image_version(Path(first.manifests) /
                                                 "kube-apiserver.yaml") or paths.version())
    args, _unknown = parser().parse_known_args(argv)
    serve(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
