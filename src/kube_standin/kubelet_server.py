"""The kubelet stand-in's endpoints: healthz, and the HTTPS port the API server calls.

On the kubelet port (10250, TLS with a self-signed certificate as kubeadm's kubelets have):
`/healthz`, `/pods`, `/configz` and `/containerLogs/NS/POD/CONTAINER` (the record of
`podlogs.py`), reached through `kubectl logs` and `nodes/NAME/proxy`. Like a kubeadm kubelet it
takes no anonymous requests: a client certificate from the cluster CA is needed, and only the
API server's (or an admin's) is allowed. Anything else answers 404 and says the stand-in does
not serve it.
"""

from __future__ import annotations

import http.server
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from . import pki, podlogs
from .client import Client, ClientError
from .paths import BANNER, p, write_private, write_public

log = logging.getLogger("kubelet-standin")
# Who may use the kubelet API: kubeadm's apiserver-kubelet-client certificate and admins.
ALLOWED_GROUPS = {"kubeadm:cluster-admins", "system:masters"}
SERVED = ("/healthz", "/pods", "/configz", "/containerLogs/")


class KubeletState:
    """What the endpoints need from the running kubelet."""

    def __init__(self, node: str, config: dict[str, Any], client: Client,
                 pods: Callable[[], list[dict[str, Any]]]) -> None:
        self.node, self.config, self.client, self.pods = node, config, client, pods


def _handler(state: KubeletState, secure: bool) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, code: int, body: bytes | str, ctype: str = "text/plain; "
                                                                   "charset=utf-8") -> None:
            raw = body.encode() if isinstance(body, str) else body
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _user(self) -> tuple[str, list[str]] | None:
            cert = self.connection.getpeercert(binary_form=True)
            if not cert:
                return None
            from cryptography import x509
            from cryptography.hazmat.primitives import serialization

            pem = x509.load_der_x509_certificate(cert).public_bytes(
                serialization.Encoding.PEM)
            return pki.subject_of(pem)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path = url.path
            if path == "/healthz":
                self._send(200, "ok")
                return
            if not secure:
                self._send(404, "404 page not found\n")
                return
            user = self._user()
            if user is None:
                self._send(401, "Unauthorized")
                return
            subresource = {"/containerLogs": "log", "/pods": "proxy", "/configz": "proxy"}.get(
                "/" + path.split("/")[1], "proxy")
            if not ALLOWED_GROUPS & set(user[1]):
                self._send(403, f"Forbidden (user={user[0]}, verb=get, resource=nodes, "
                                f"subresource(s)=[{subresource}])")
                return
            try:
                if path == "/pods":
                    self._send(200, json.dumps({"kind": "PodList", "apiVersion": "v1",
                                                "metadata": {}, "items": state.pods()}),
                               "application/json")
                elif path == "/configz":
                    self._send(200, json.dumps({"kubeletconfig": state.config}),
                               "application/json")
                elif path.startswith("/containerLogs/") and len(path.split("/")) == 5:
                    _, _, ns, pod, container = (unquote(s) for s in path.split("/"))
                    self._logs(ns, pod, container, url.query)
                else:
                    self._send(404, f"404 page not found\n({BANNER}: the kubelet stand-in "
                                    f"serves only {', '.join(SERVED)})\n")
            except podlogs.LogError as err:
                self._send(err.code, err.message)
            except ClientError as err:
                self._send(503 if err.code == 0 else err.code, err.message)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                self.close_connection = True

        def _logs(self, ns: str, name: str, container: str, query: str) -> None:
            where = f"/api/v1/namespaces/{ns}/pods/{name}"
            pod = state.client.get(where)
            data = podlogs.read(pod, container, query)
            if "follow=true" not in query and "follow=1" not in query:
                self._send(200, data)
                return
            # Follow: what is there, then each new record, until the pod is gone.
            path, options = podlogs.locate(pod, container, query)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if data:
                self._chunk(data)
            seen = len(podlogs.records(path))
            while True:
                time.sleep(1)
                try:
                    state.client.get(where)
                except ClientError:
                    break
                lines = podlogs.records(path)
                if len(lines) > seen:
                    self._chunk(podlogs.render(lines[seen:], options))
                    seen = len(lines)
            self._chunk(b"")
            self.close_connection = True

        def _chunk(self, data: bytes) -> None:
            if data:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            else:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return Handler


def serve(state: KubeletState) -> list[http.server.ThreadingHTTPServer]:
    """Start healthz on 127.0.0.1:healthzPort (HTTP) and the kubelet port (HTTPS)."""
    config = state.config
    healthz = http.server.ThreadingHTTPServer(
        ("127.0.0.1", int(config.get("healthzPort", 10248))), _handler(state, secure=False))
    secure = http.server.ThreadingHTTPServer(("0.0.0.0", int(config.get("port", 10250))),
                                             _handler(state, secure=True))
    cert_dir = p("/var/lib/kubelet/pki")
    crt, key = cert_dir / "kubelet.crt", cert_dir / "kubelet.key"
    if not crt.exists():
        pair = pki.make_ca(f"{state.node}-ca@standin")
        write_public(crt, pair.cert)
        write_private(key, pair.key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    client_ca = p(str((config.get("authentication") or {}).get("x509", {}).get(
        "clientCAFile", "/etc/kubernetes/pki/ca.crt")))
    if client_ca.exists():
        ctx.load_verify_locations(str(client_ca))
        ctx.verify_mode = ssl.CERT_OPTIONAL
    secure.socket = ctx.wrap_socket(secure.socket, server_side=True)
    for srv in (healthz, secure):
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    return [healthz, secure]
