"""A small JSON client for the API server, used by kubeadm and the kubelet stand-ins."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import tempfile
from typing import Any
from urllib.parse import urlsplit

from . import pki


class ClientError(Exception):
    """The server answered with an error Status (or could not be reached: code 0)."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


class Client:
    """Talks JSON to one API server with a client certificate, a bearer token or neither."""

    def __init__(self, server: str, ca: bytes | None, cert: bytes = b"", key: bytes = b"",
                 token: str = "", timeout: float = 10.0) -> None:
        url = urlsplit(server)
        self.host, self.port = url.hostname or "", url.port or 443
        self.token, self.timeout = token, timeout
        if ca:
            self.ctx = ssl.create_default_context(cadata=ca.decode())
        else:  # discovery before the CA is trusted: the caller pins the CA hash instead
            self.ctx = ssl.create_default_context()
            self.ctx.check_hostname = False
            self.ctx.verify_mode = ssl.CERT_NONE
        if cert:
            # ssl wants files: write both to one private temporary file and drop it at once.
            fd, name = tempfile.mkstemp(prefix=".kube-standin-", suffix=".pem")
            try:
                os.write(fd, cert + b"\n" + key)
                os.close(fd)
                self.ctx.load_cert_chain(name)
            finally:
                os.unlink(name)

    @classmethod
    def from_kubeconfig(cls, text: str, timeout: float = 10.0) -> Client:
        """A client for the current context of a kubeconfig."""
        kc = pki.read_kubeconfig(text)
        return cls(kc.server, kc.ca, kc.cert, kc.key, kc.token, timeout)

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> Any:
        """One request; the decoded JSON answer, or ClientError."""
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                           timeout=self.timeout)
        headers = {"Accept": "application/json", "User-Agent": "kube-standin"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        raw = None
        if body is not None:
            raw = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            conn.request(method, path, body=raw, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
            raise ClientError(0, "Unreachable", str(exc)) from None
        finally:
            conn.close()
        try:
            doc = json.loads(data) if data else {}
        except json.JSONDecodeError:
            doc = {"message": data.decode(errors="replace")}
        if resp.status >= 400:
            raise ClientError(resp.status, str(doc.get("reason", "")),
                              str(doc.get("message", resp.reason)))
        return doc

    def get(self, path: str) -> Any:
        """GET."""
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        """POST (create)."""
        return self.request("POST", path, body)

    def put(self, path: str, body: Any) -> Any:
        """PUT (update)."""
        return self.request("PUT", path, body)

    def merge_patch(self, path: str, body: Any) -> Any:
        """PATCH with a JSON merge patch."""
        return self.request("PATCH", path, body, "application/merge-patch+json")

    def delete(self, path: str) -> Any:
        """DELETE."""
        return self.request("DELETE", path)

    def ensure(self, collection: str, obj: dict[str, Any]) -> Any:
        """Create `obj` in `collection`, or replace it if it exists (kubeadm's create-or-update)."""
        try:
            return self.post(collection, obj)
        except ClientError as err:
            if err.code != 409:
                raise
        name = obj["metadata"]["name"]
        live = self.get(f"{collection}/{name}")
        obj = dict(obj, metadata=dict(obj["metadata"],
                                      resourceVersion=live["metadata"]["resourceVersion"]))
        return self.put(f"{collection}/{name}", obj)
