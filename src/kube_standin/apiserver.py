"""The API server stand-in: HTTPS on :6443 with the routes, auth and errors kubectl expects.

`kubeadm init` writes `/etc/kubernetes/manifests/kube-apiserver.yaml` like the real one; the
`kube-apiserver-standin` service reads its flags from that manifest (and the controller-manager's
for the pod CIDR), so the files on the node tell the truth about what runs.

This module is the HTTP plumbing: every connection gets its own thread, whose TLS handshake and
reads run under timeouts, so a client that says nothing holds up only itself. Bodies are read
only once a request is authenticated and routed, capped at 3 MiB like the real server's. What
each path does is in `routes`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from . import auth, controllers, media, paths, pki, routes, services
from .api import ApiServer
from .paths import BANNER, git_version
from .store import ApiError, Obj

log = logging.getLogger("kube-apiserver-standin")

HANDSHAKE_TIMEOUT = 10.0  # seconds for a new connection to finish its TLS handshake
IDLE_TIMEOUT = 90.0  # seconds a connection may sit silent (between or within requests)
# Seconds, and bytes, read and dropped before a connection is closed: enough for a client to
# finish sending a body a few MiB over the limit and read the 413 (Go's client reads the
# answer only once its write is done).
LINGER_TIMEOUT = 2.0
LINGER_BYTES = 16 * 1024 * 1024


class Server(ThreadingHTTPServer):
    """Accepts at once and hands each connection, handshake included, to its own thread."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[Handler],
                 context: ssl.SSLContext) -> None:
        super().__init__(address, handler)
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        # As Go's server: no Nagle delay between a response's headers and its body.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            conn = self.context.wrap_socket(request, server_side=True)
        except (OSError, ValueError) as exc:  # silent, slow or not TLS at all
            log.debug("%s: handshake failed: %s", client_address[0], exc)
            return
        try:
            conn.settimeout(IDLE_TIMEOUT)
            self.RequestHandlerClass(conn, client_address, self)  # type: ignore[arg-type]
        except OSError as exc:
            log.debug("%s: connection ended: %s", client_address[0], exc)
        finally:
            _linger(conn)


def _linger(conn: ssl.SSLSocket) -> None:
    """Close after the answer has reached the client: stop sending, then read and drop what
    the client still sends for a moment (a body we refused), as Go's server does. Closing with
    unread data would reset the connection and could destroy the answer in flight."""
    with contextlib.suppress(OSError, ValueError):
        conn.shutdown(socket.SHUT_WR)  # ends TLS too: what follows is read as raw bytes
        deadline = time.monotonic() + LINGER_TIMEOUT
        drained = 0
        while time.monotonic() < deadline and drained < LINGER_BYTES:
            conn.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = conn.recv(65536)
            if not chunk:
                break
            drained += len(chunk)
    with contextlib.suppress(OSError):
        conn.close()


class BodyTooLarge(ApiError):
    """413, as the real server words it."""

    def __init__(self) -> None:
        super().__init__(413, "RequestEntityTooLarge",
                         f"Request entity too large: limit is {media.MAX_BODY}")


class Handler(BaseHTTPRequestHandler):
    """One connection: parses requests, authenticates, routes, and encodes answers."""

    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver-standin"
    api: ApiServer
    _body: bytes | None

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

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    # ---- requests ----
    def _dispatch(self, method: str) -> None:
        self._body = None
        self.api.context.warnings = []
        try:
            self._check_framing()
            routes.route(self, method)
        except ApiError as err:
            self.send_status(err)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, ssl.SSLError):
            self.close_connection = True
        except Exception as exc:  # the server stays up and answers like the real one
            log.exception("internal error")
            self.send_status(ApiError(500, "InternalError", f"Internal error occurred: {exc}"))
        finally:
            if self._body is None and self._has_body():
                self.close_connection = True  # an unread body must not be taken as a request

    def _check_framing(self) -> None:
        """A body's length must be a length (before anything else, as Go's HTTP server)."""
        length = self.headers.get("Content-Length")
        coding = self.headers.get("Transfer-Encoding")
        if length is not None and not length.strip().isdigit():
            raise ApiError(400, "BadRequest", f"bad Content-Length {length!r}")
        if coding is not None and (coding.strip().lower() != "chunked" or length is not None):
            raise ApiError(400, "BadRequest", f"unsupported Transfer-Encoding {coding!r}")

    def _has_body(self) -> bool:
        return bool(self.headers.get("Transfer-Encoding")) or \
            self.headers.get("Content-Length", "0").strip() not in ("", "0")

    def read_body(self) -> bytes:
        """The request body, read once: at most 3 MiB (413 above, unread), 400 when its
        length is not a length."""
        if self._body is not None:
            return self._body
        if self.headers.get("Transfer-Encoding"):
            self._body = self._read_chunked()
            return self._body
        length = self.headers.get("Content-Length", "").strip()
        if not length:
            self._body = b""
            return self._body
        if int(length) > media.MAX_BODY:
            raise BodyTooLarge()
        self._body = self.rfile.read(int(length))
        if len(self._body) < int(length):
            self.close_connection = True
            raise ApiError(400, "BadRequest", "the request body ended early")
        return self._body

    def _read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ApiError(400, "BadRequest", "malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return bytes(out)
            if len(out) + size > media.MAX_BODY:
                raise BodyTooLarge()
            out += self.rfile.read(size)
            self.rfile.readline(8)

    def peer_subject(self) -> tuple[str, list[str]] | None:
        """CN and O of a verified client certificate, or None."""
        cert = self.connection.getpeercert(binary_form=True)
        if not cert:
            return None
        return pki.subject_of(x509.load_der_x509_certificate(cert).public_bytes(
            pki.serialization.Encoding.PEM))

    def user(self) -> auth.User:
        """Who is asking: certificate, bearer token or nobody; then impersonation, if asked."""
        bearer = self.headers.get("Authorization", "")
        bearer = bearer[7:].strip() if bearer.lower().startswith("bearer ") else ""
        who = auth.authenticate(self.api.store, self.peer_subject(), bearer, self.api.sa_pub)
        return auth.impersonate(self.api.authorizer, who, self.headers)

    # ---- answers ----
    def send_raw(self, code: int, raw: bytes, content_type: str,
                 extra: dict[str, str] | None = None) -> None:
        """Send a complete response."""
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self._warnings()
        if self._body is None and self._has_body():
            self.close_connection = True  # answered without reading the body: end here
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    def _warnings(self) -> None:
        for text in dict.fromkeys(self.api.context.warnings):
            self.send_header("Warning", '299 - "' + text.replace('"', '\\"') + '"')

    def send_text(self, code: int, text: str) -> None:
        """A plain-text answer (/healthz and friends)."""
        self.send_raw(code, text.encode(), "text/plain; charset=utf-8")

    def send_object(self, code: int, doc: Obj, table: routes.TableFor | None = None) -> None:
        """`doc` in the first encoding the client accepts: JSON, YAML, protobuf, or as a
        Table/PartialObjectMetadata when `table` can make one."""
        accept = self.headers.get("Accept", "")
        for wanted in media.parse_accept(accept):
            rendered: tuple[bytes, str] | None
            if wanted.as_:
                converted = table(wanted) if table is not None and doc.get(
                    "kind") != "Status" else None
                rendered = None if converted is None else media.render(
                    converted, media.MediaRange(media.JSON))
            else:
                rendered = media.render(doc, wanted)
            if rendered is not None:
                self.send_raw(code, *rendered)
                return
        if doc.get("kind") == "Status":  # an error goes out in JSON whatever was asked
            self.send_raw(code, json.dumps(doc).encode(), media.JSON)
            return
        self.send_status(media.not_acceptable(accept))

    def send_status(self, err: ApiError) -> None:
        """A failure as a `Status` object."""
        try:
            self.send_object(err.code, err.status())
        except OSError:
            self.close_connection = True

    def start_stream(self, content_type: str) -> None:
        """Headers of a chunked response (watch)."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self._warnings()
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        """One chunk (an empty one ends the stream)."""
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


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


def tls_context(args: argparse.Namespace) -> ssl.SSLContext:
    """Serving certificate, client CAs, client certificates optional (tokens are allowed)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls_cert_file, args.tls_private_key_file)
    ctx.load_verify_locations(args.client_ca_file)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def serve(args: argparse.Namespace, ready: threading.Event | None = None,
          stop: threading.Event | None = None) -> None:
    """Run until `stop` is set (or forever)."""
    api = ApiServer(args)
    handler = type("BoundHandler", (Handler,), {"api": api})
    httpd = Server((args.bind_address, args.secure_port), handler, tls_context(args))
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
