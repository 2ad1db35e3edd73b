"""A local proxy to the API server, as `kubectl proxy` runs one, for the dashboard.

Bound to 127.0.0.1 only. Requests go upstream over TLS with the kubeconfig context's
credentials (held in memory), so a browser on this machine reaches the dashboard through the
API server's Service proxy without holding any credential itself. As kubectl proxy does by
default, it refuses requests whose Host is not a loopback name (a web page elsewhere cannot
reach it by DNS rebinding) and the paths that run commands in pods (exec, attach; and
port-forward and the kubelet's own API through the node proxy too). Streams (watches) are
passed on as they come; protocol upgrades (WebSockets) are tunnelled.
"""

from __future__ import annotations

import errno
import http.client
import posixpath
import re
import select
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from pifleet.errors import BadInput
from pifleet.kube.credentials import Credentials
from pifleet.kube.errors import translate

LOOPBACK = "127.0.0.1"
# kubectl proxy's defaults: --accept-hosts='^localhost$,^127\.0\.0\.1$,^\[::1\]$' (matched
# against the host without its port and brackets, so in effect the first two) and
# --reject-paths='^/api/.*/pods/.*/exec,^/api/.*/pods/.*/attach'. pifleet also refuses
# port-forward and the node proxy (the kubelet's API runs commands in containers too).
ACCEPT_HOSTS = frozenset({"localhost", "127.0.0.1"})
REJECT_PATHS = re.compile(r"^/api/.*/pods/.*/(exec|attach|portforward)|^/api/v1/nodes/[^/]+/proxy")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
                        "host"})
_CHUNK = 65536
_CONNECT_TIMEOUT = 10.0


def request_host(value: str) -> str:
    """The host part of a Host header (`[::1]:8001` -> `::1`, `localhost:8001` -> `localhost`)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def refused_path(target: str) -> bool:
    """Whether a request target could run commands on a node (exec, attach, port-forward, the
    kubelet through the node proxy), however the path is spelled (percent-escapes, doubled
    slashes, dot segments)."""
    path = unquote(target.split("?", 1)[0])
    cleaned = posixpath.normpath(re.sub(r"/+", "/", path))
    return any(REJECT_PATHS.match(p) for p in (path, cleaned))


class _ClientGone(Exception):
    """The browser closed its connection: nothing more to send it."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed is closed without a traceback on the user's terminal."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pifleet-proxy"
    # Headers and body go out in separate writes: without this, Nagle's algorithm and the
    # browser's delayed ACK hold every response back by about 40 ms.
    disable_nagle_algorithm = True
    proxy: LocalProxy  # set on the subclass each proxy makes

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines can carry names a user would not want in a terminal."""

    def do_GET(self) -> None:
        self._forward()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    # ---- checks ----
    def _refuse(self, code: int, why: str) -> None:
        body = f"pifleet proxy: {why}\n".encode()
        self.close_connection = True  # any request body left unread is not a next request
        self.send_response_only(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _allowed(self) -> bool:
        host = request_host(self.headers.get("Host", ""))
        if host not in ACCEPT_HOSTS:
            self._refuse(403, f"Host {host or '(none)'!r} refused: only a browser on this "
                              "machine may use this proxy (localhost or 127.0.0.1)")
            return False
        if not self.path.startswith("/"):
            self._refuse(400, "only origin-form request targets are served")
            return False
        if refused_path(self.path):
            self._refuse(403, "exec, attach, port-forward and the node proxy are not served "
                              "through this proxy")
            return False
        return True

    # ---- forwarding ----
    def _body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _upstream_headers(self, body: bytes | None) -> list[tuple[str, str]]:
        creds = self.proxy.credentials
        named = {h.strip().lower() for h in self.headers.get("Connection", "").split(",")}
        out = [(k, v) for k, v in self.headers.items()
               if k.lower() not in HOP_BY_HOP and k.lower() not in named
               and k.lower() != "content-length"]
        out.insert(0, ("Host", urlsplit(creds.server).netloc))
        if creds.authorization and "authorization" not in {k.lower() for k, _ in out}:
            out.append(("Authorization", creds.authorization))
        if body is not None:
            out.append(("Content-Length", str(len(body))))
        return out

    def _forward(self) -> None:
        if not self._allowed():
            return
        self._answered = False
        upgrade = "upgrade" in self.headers.get("Connection", "").lower() and \
            self.headers.get("Upgrade")
        try:
            if upgrade:
                self._tunnel()
            else:
                self._relay(self._exchange(self._body()))
        except _ClientGone:
            self.close_connection = True
            self.proxy.drop_upstream(self)
        except (OSError, http.client.HTTPException) as exc:
            self.proxy.drop_upstream(self)
            self.close_connection = True
            if not self._answered:
                err = translate(exc, self.proxy.credentials.server,
                                self.proxy.credentials.host)
                self._refuse(502, str(err))

    def finish(self) -> None:
        self.proxy.drop_upstream(self)
        super().finish()

    def _exchange(self, body: bytes | None) -> http.client.HTTPResponse:
        """Send the request upstream; a kept-alive connection the server closed meanwhile is
        replaced once (nothing had been answered on it)."""
        for attempt in (1, 2):
            reused = getattr(self, "_upstream", None) is not None
            conn = self.proxy.upstream(self)
            try:
                conn.putrequest(self.command, self.proxy.prefix + self.path, skip_host=True,
                                skip_accept_encoding=True)
                for key, value in self._upstream_headers(body):
                    conn.putheader(key, value)
                conn.endheaders(body)
                return conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.proxy.drop_upstream(self)
                if not reused or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
        except OSError as exc:
            raise _ClientGone from exc

    def _relay(self, resp: http.client.HTTPResponse) -> None:
        self._answered = True
        self.send_response_only(resp.status, resp.reason)
        length = resp.getheader("Content-Length")
        bodiless = self.command == "HEAD" or resp.status in (204, 304) or resp.status < 200
        for key, value in resp.getheaders():
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        if bodiless or length is not None:
            if length is not None:
                self.send_header("Content-Length", length)
            self._write_headers()
            left = 0 if bodiless else int(length or 0)
            while left > 0:
                data = resp.read(min(_CHUNK, left))
                if not data:
                    raise ConnectionResetError("the API server closed the response early")
                self._write(data)
                left -= len(data)
        else:  # a stream (a watch) or a close-delimited body: chunks, flushed as they come
            self.send_header("Transfer-Encoding", "chunked")
            self._write_headers()
            while data := resp.read1(_CHUNK):
                self._write(b"%x\r\n%s\r\n" % (len(data), data))
                self._flush()
            self._write(b"0\r\n\r\n")
        self._flush()
        resp.close()
        if resp.will_close:
            self.proxy.drop_upstream(self)

    def _write_headers(self) -> None:
        try:
            self.end_headers()
        except OSError as exc:
            raise _ClientGone from exc

    def _flush(self) -> None:
        try:
            self.wfile.flush()
        except OSError as exc:
            raise _ClientGone from exc

    def _tunnel(self) -> None:
        """A protocol upgrade (WebSocket): pass the handshake on, then bytes both ways."""
        creds = self.proxy.credentials
        self.close_connection = True
        raw = socket.create_connection((creds.host, creds.port), timeout=_CONNECT_TIMEOUT)
        upstream = creds.ssl_context.wrap_socket(raw, server_hostname=creds.host)
        try:
            headers = self._upstream_headers(None)
            headers += [("Connection", "Upgrade"), ("Upgrade", self.headers["Upgrade"])]
            head = f"{self.command} {self.proxy.prefix}{self.path} HTTP/1.1\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
            upstream.sendall(head.encode("latin-1"))
            upstream.settimeout(None)
            self._answered = True
            _splice(self.connection, upstream)
        finally:
            upstream.close()


def _splice(client: socket.socket, upstream: Any) -> None:
    """Copy bytes both ways until either side closes (one thread: select, TLS-aware)."""
    while True:
        ready = [upstream] if upstream.pending() else \
            select.select([client, upstream], [], [])[0]
        for sock in ready:
            data = sock.recv(_CHUNK)
            if not data:
                return
            (upstream if sock is client else client).sendall(data)


@contextmanager
def _interrupt_here() -> Iterator[None]:
    """Ctrl-C stops the caller, also in a gevent-patched process (as `pifleet up` runs).

    There each connection is served by a greenlet, and Python raises KeyboardInterrupt in
    whichever one runs when the signal comes: a connection's, which would end only that one.
    gevent's own signal handler sends it to the serving greenlet instead.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("socket") or \
            threading.current_thread() is not threading.main_thread():
        yield
        return
    import gevent

    watcher = gevent.signal_handler(signal.SIGINT, gevent.kill, gevent.getcurrent(),
                                    KeyboardInterrupt)
    try:
        yield
    finally:
        watcher.cancel()


class LocalProxy:
    """An HTTP proxy on 127.0.0.1 to one cluster's API server. Use as a context manager, or
    `start()` it in the background / `serve_forever()` in the foreground, then `close()`."""

    def __init__(self, creds: Credentials, port: int = 0) -> None:
        self.credentials = creds
        self.prefix = urlsplit(creds.server).path.rstrip("/")
        handler = type("Handler", (_Handler,), {"proxy": self})
        try:
            self._server = _Server((LOOPBACK, port), handler)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise BadInput(f"port {port} on {LOOPBACK} is not free for the proxy "
                               f"({exc.strerror}); choose another or let pifleet pick one") \
                    from None
            raise
        self._thread: threading.Thread | None = None
        self._serving = False

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The proxy's base URL, e.g. http://127.0.0.1:41234."""
        return f"http://{LOOPBACK}:{self.port}"

    def url_for(self, path: str) -> str:
        """The URL of an API path through this proxy."""
        return self.url + (path if path.startswith("/") else "/" + path)

    def upstream(self, handler: _Handler) -> http.client.HTTPSConnection:
        """The upstream connection of one client connection (kept alive between requests)."""
        conn = getattr(handler, "_upstream", None)
        if conn is None:
            creds = self.credentials
            conn = http.client.HTTPSConnection(creds.host, creds.port,
                                               context=creds.ssl_context,
                                               timeout=_CONNECT_TIMEOUT)
            conn.connect()
            if conn.sock is not None:
                conn.sock.settimeout(None)  # watches stay quiet for minutes
            handler._upstream = conn  # type: ignore[attr-defined]
        return conn

    def drop_upstream(self, handler: _Handler) -> None:
        """Close a client connection's upstream connection (after an error or a close)."""
        conn = getattr(handler, "_upstream", None)
        if conn is not None:
            conn.close()
            handler._upstream = None  # type: ignore[attr-defined]

    def serve_forever(self) -> None:
        """Serve in this thread until `close()` is called from another, or an interrupt
        (Ctrl-C raises KeyboardInterrupt here; then call `close()`)."""
        self._serving = True
        try:
            with _interrupt_here():
                self._server.serve_forever(poll_interval=0.25)
        finally:
            self._serving = False

    def start(self) -> LocalProxy:
        """Serve in a background thread."""
        self._serving = True  # close() right after start() must still stop the thread
        self._thread = threading.Thread(target=self.serve_forever, name="pifleet-proxy",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._serving:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> LocalProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
