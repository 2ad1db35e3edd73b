"""TLS and authentication for one kubeconfig context, held in memory only.

Python's `ssl` loads a client certificate and key only from a path. lightkube writes inline
`*-data` to temporary files for that; pifleet never puts cluster-admin credentials on disk: it
hands OpenSSL an anonymous in-memory file (`memfd_create` on Linux, a pipe elsewhere) by its
`/proc/self/fd` or `/dev/fd` path, closed as soon as the context has read it.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pifleet.errors import BadInput
from pifleet.kube.kubeconfig import entry, parse

_PIPE_LIMIT = 16384  # the smallest pipe buffer of the systems pifleet runs on (macOS)


@dataclass(frozen=True, repr=False)
class Credentials:
    """How to reach and authenticate to one cluster: server, TLS context, auth header.

    The repr names only the context and the server, never the credentials.
    """

    context: str
    server: str
    ssl_context: ssl.SSLContext = field(compare=False)
    authorization: str | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        return f"Credentials(context={self.context!r}, server={self.server!r})"

    @property
    def host(self) -> str:
        """The server's host name or address."""
        return urlsplit(self.server).hostname or ""

    @property
    def port(self) -> int:
        """The server's port (443 when the URL has none)."""
        return urlsplit(self.server).port or 443


def _b64(value: Any, what: str, source: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{source}: {what} is not base64") from None


@contextmanager
def _memory_path(data: bytes) -> Iterator[str]:
    """A path that reads back `data` without the bytes ever touching a filesystem."""
    if hasattr(os, "memfd_create") and sys.platform.startswith("linux"):
        fd = os.memfd_create("pifleet-credential", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    if len(data) > _PIPE_LIMIT:
        raise BadInput("client certificate or key too large to load from memory")
    read, write = os.pipe()
    try:
        os.write(write, data)
        os.close(write)
        write = -1
        yield f"/dev/fd/{read}"
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)


def _file(value: Any, base: Path | None) -> str:
    path = Path(str(value)).expanduser()
    return str(path if path.is_absolute() or base is None else base / path)


def _tls(cluster: Mapping[str, Any], user: Mapping[str, Any], base: Path | None,
         source: str) -> ssl.SSLContext:
    if cluster.get("insecure-skip-tls-verify"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        ca = _b64(cluster["certificate-authority-data"], "certificate-authority-data", source)
        try:
            ctx = ssl.create_default_context(cadata=ca.decode("ascii", "replace"))
        except ssl.SSLError:
            raise BadInput(f"{source}: certificate-authority-data is not a PEM "
                           "certificate") from None
    elif cluster.get("certificate-authority"):
        cafile = _file(cluster["certificate-authority"], base)
        try:
            ctx = ssl.create_default_context(cafile=cafile)
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
            raise BadInput(f"{source}: certificate-authority {cafile}: {reason}") from None
    else:
        ctx = ssl.create_default_context()
    try:
        if user.get("client-certificate-data"):
            cert = _b64(user["client-certificate-data"], "client-certificate-data", source)
            key = _b64(user.get("client-key-data", ""), "client-key-data", source)
            with _memory_path(cert) as cert_path, _memory_path(key) as key_path:
                ctx.load_cert_chain(cert_path, key_path)
        elif user.get("client-certificate"):
            ctx.load_cert_chain(_file(user["client-certificate"], base),
                                _file(user.get("client-key", ""), base))
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise BadInput(f"{source}: the client certificate and key cannot be used: "
                       f"{reason}") from None
    return ctx


def _authorization(user: Mapping[str, Any], base: Path | None, source: str) -> str | None:
    if user.get("token"):
        return f"Bearer {user['token']}"
    if user.get("tokenFile"):
        try:
            return "Bearer " + Path(_file(user["tokenFile"], base)).read_text().strip()
        except OSError as exc:
            raise BadInput(f"{source}: cannot read tokenFile: {exc.strerror}") from None
    if user.get("username") and user.get("password"):
        pair = f"{user['username']}:{user['password']}".encode()
        return "Basic " + base64.b64encode(pair).decode()
    for unsupported in ("exec", "auth-provider"):
        if user.get(unsupported):
            raise BadInput(f"{source}: the user uses an {unsupported} plugin, which pifleet does "
                           "not run; use the fleet's own context (pifleet kubeconfig)")
    return None


def credentials(config: Mapping[str, Any] | str, context: str | None = None, *,
                source: str = "kubeconfig", base: Path | None = None) -> Credentials:
    """Credentials for `context` (default: the current one) of a kubeconfig in memory.

    `config` is the parsed document or its text; `base` is the folder relative file paths in
    it are read from (the kubeconfig file's own, as kubectl does).
    """
    doc = parse(config, source) if isinstance(config, str) else dict(config)
    name = context or doc.get("current-context") or ""
    ctx = entry(doc, "contexts", name) if name else None
    if ctx is None:
        raise BadInput(f"{source}: no context {name!r}" if name else
                       f"{source}: no current context; name one")
    body = ctx.get("context") or {}
    cluster = entry(doc, "clusters", str(body.get("cluster", "")))
    if cluster is None:
        raise BadInput(f"{source}: context {name!r} names cluster {body.get('cluster')!r}, "
                       "which is not there")
    user = entry(doc, "users", str(body.get("user", ""))) or {"user": {}}
    cluster_body, user_body = cluster.get("cluster") or {}, user.get("user") or {}
    server = str(cluster_body.get("server", ""))
    parts = urlsplit(server)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadInput(f"{source}: cluster {cluster['name']!r} has no usable server URL")
    return Credentials(name, server.rstrip("/"),
                       _tls(cluster_body, user_body, base, source),
                       _authorization(user_body, base, source))
