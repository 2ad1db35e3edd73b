"""The sandbox's apt proxy: serves this machine's Debian archives to one sandbox's nodes, from
a cache on disk, and refuses everything else.

An HTTP/1.1 forward proxy (what apt's `Acquire::http::Proxy` speaks). It answers only `GET`
and `HEAD` of an absolute `http://` URL inside one of its archives (by the host name and path
the node's sources give, under `dists/` or `pool/`), and `CONNECT` to the host and port of an
`https://` archive; every other request gets 403 and costs nothing beyond this process: no
name lookup, no connection. It has no pages of its own.

The cache is shared by every sandbox's proxy: package files and `by-hash` indexes never change
under their names and are served from it without asking upstream; other indexes (InRelease,
Release) are checked with If-Modified-Since on each request, and served from the cache when
upstream cannot be reached. Several nodes asking for a file at once share one download, and
each reads it while it arrives. Run as `python -m pifleet.sandbox.aptproxy CONFIG.json`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import itertools
import json
import os
import re
import signal
import stat
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

MAX_LINE = 8192
MAX_HEADERS = 100
MAX_CLIENTS = 512
CHUNK = 256 * 1024
CLIENT_IDLE = 120.0  # a keep-alive connection with no new request is closed after this
HEADER_TIMEOUT = 30.0  # to send a whole request head once it started
UPSTREAM_CONNECT = 20.0
UPSTREAM_IDLE = 60.0  # upstream silent this long: the download failed
TUNNEL_IDLE = 300.0
UNUSED_DAYS = 30  # cached files nobody asked for in this long are removed at start
# The parts of a Debian archive apt fetches; nothing else of the archive's host is served.
ARCHIVE_AREAS = ("dists/", "pool/")
# What apt's file names are made of (after percent-decoding).
SAFE_PATH = re.compile(r"[A-Za-z0-9._+~:@=,/-]*")
AGENT = "pifleet-sandbox-apt-proxy"


class Refused(Exception):
    """A request this proxy does not serve: answered with `status` and the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Origin:
    """An archive nodes may use: scheme, host (as written in the sources), port, path."""

    scheme: str
    host: str
    port: int
    path: str  # without a trailing slash; "" for the host's root

    @classmethod
    def parse(cls, uri: str) -> Origin:
        """The origin of an archive URI such as `http://mirror.example/debian`."""
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) archive URI: {uri}")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError(f"archive URI with credentials, query or fragment: {uri}")
        default = 443 if parts.scheme == "https" else 80
        return cls(parts.scheme, parts.hostname.lower(), parts.port or default,
                   parts.path.rstrip("/"))


@dataclass(frozen=True)
class Target:
    """A file of an allowed archive, as one request asked for it."""

    origin: Origin
    raw_path: str  # as sent, forwarded upstream unchanged
    path: str  # percent-decoded and checked: the cache key

    @property
    def immutable(self) -> bool:
        """Package files and by-hash indexes never change under their names."""
        rest = self.path[len(self.origin.path) + 1:]
        return rest.startswith("pool/") or "/by-hash/" in rest

    def cache_file(self, root: Path) -> Path:
        """Where this file is kept in the cache folder `root`: named by a hash of its path, so
        no request can make a file where another needs a folder."""
        digest = hashlib.sha256(self.path.encode()).hexdigest()
        return root / f"{self.origin.host}_{self.origin.port}" / digest[:2] / digest


def resolve(url: str, origins: list[Origin]) -> Target:
    """The archive file `url` (a proxy request's absolute URL) names; Refused otherwise.

    Only the names apt was given count: the same server by another name or address, any
    other host or port, credentials, a query, dot segments (also percent-encoded) or a path
    outside the archive's `dists/` and `pool/` are refused.
    """
    if "?" in url or "#" in url or not url.startswith("http://"):
        raise Refused(403, "only http:// URLs of this machine's Debian archives are served")
    parts = urlsplit(url)
    try:
        port = parts.port or 80
    except ValueError:
        raise Refused(403, "bad port") from None
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None:
        raise Refused(403, "only http:// URLs of this machine's Debian archives are served")
    path = unquote(parts.path)
    segments = path.split("/")
    if not SAFE_PATH.fullmatch(path) or "." in segments or ".." in segments:
        raise Refused(403, "not a file name apt asks for")
    for origin in origins:
        if (origin.scheme, origin.host, origin.port) != ("http", host, port):
            continue
        prefix = origin.path + "/"
        if path.startswith(prefix) and path[len(prefix):].startswith(ARCHIVE_AREAS):
            return Target(origin, parts.path, path)
    raise Refused(403, "not one of this machine's Debian archives")


def tunnel_allowed(authority: str, origins: list[Origin]) -> tuple[str, int]:
    """(host, port) of a CONNECT request to an https archive's host; Refused otherwise."""
    host, _, port_text = authority.rpartition(":")
    if not port_text.isdigit():
        raise Refused(403, "bad CONNECT target")
    for origin in origins:
        if origin.scheme == "https" and origin.host == host.lower() and \
                origin.port == int(port_text):
            return origin.host, origin.port
    raise Refused(403, "tunnels only to this machine's https Debian archives")


# --- HTTP plumbing ---------------------------------------------------------------------------

@dataclass
class Request:
    """One request head."""

    method: str
    target: str
    version: str
    headers: dict[str, str]

    @property
    def keep_alive(self) -> bool:
        """Whether the client keeps the connection for another request."""
        token = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return token == "keep-alive"
        return token != "close"


async def read_line(reader: asyncio.StreamReader) -> bytes:
    """One CRLF-terminated line, at most MAX_LINE bytes; b"" at end of stream."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        return exc.partial
    except asyncio.LimitOverrunError:
        raise Refused(400, "line too long") from None
    if len(line) > MAX_LINE:
        raise Refused(400, "line too long")
    return line


async def read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    """Header fields up to the blank line, names lower-cased."""
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        line = (await read_line(reader)).decode("latin-1").strip()
        if not line:
            return headers
        name, sep, value = line.partition(":")
        if not sep:
            raise Refused(400, "malformed header")
        headers[name.strip().lower()] = value.strip()
    raise Refused(400, "too many headers")


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request head (None when the client closed or stayed idle)."""
    try:
        first = await asyncio.wait_for(read_line(reader), CLIENT_IDLE)
    except (TimeoutError, ConnectionError):
        return None
    if not first.strip():
        return None
    parts = first.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise Refused(400, "malformed request line")
    headers = await asyncio.wait_for(read_headers(reader), HEADER_TIMEOUT)
    if "content-length" in headers or "transfer-encoding" in headers:
        raise Refused(400, "request bodies are not accepted")
    return Request(parts[0], parts[1], parts[2], headers)


async def send(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write to a client, waiting at most CLIENT_IDLE for it to take the data."""
    writer.write(data)
    await asyncio.wait_for(writer.drain(), CLIENT_IDLE)


def response_head(status: int, reason: str, headers: dict[str, str]) -> bytes:
    """An HTTP/1.1 status line and header block."""
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 403: "Forbidden",
           404: "Not Found", 502: "Bad Gateway", 504: "Gateway Timeout"}


def error_response(status: int, message: str, keep_alive: bool) -> bytes:
    """A short plain-text answer."""
    body = f"pifleet sandbox apt proxy: {message}\n".encode()
    head = response_head(status, REASONS.get(status, "Error"), {
        "Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body)),
        "Connection": "keep-alive" if keep_alive else "close"})
    return head + body


# --- downloads into the cache ----------------------------------------------------------------

class UpstreamError(Exception):
    """The archive could not be reached or answered with an error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Download:
    """One file coming from upstream into the cache, readable while it arrives."""

    final: Path
    part: Path
    size: int | None = None
    written: int = 0
    last_modified: float | None = None
    done: bool = False
    error: UpstreamError | None = None
    not_modified: bool = False  # upstream says the cached copy is current
    started: asyncio.Event = field(default_factory=asyncio.Event)  # head known (or failed)
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        """Wake every reader (they wait on a fresh event afterwards)."""
        self.progress.set()
        self.progress = asyncio.Event()


_part_numbers = itertools.count()


async def open_upstream(origin: Origin) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the archive's host (TLS for https archives)."""
    ssl = origin.scheme == "https" or None
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(origin.host, origin.port, ssl=ssl, limit=MAX_LINE * 2),
            UPSTREAM_CONNECT)
    except TimeoutError:
        raise UpstreamError(504, f"{origin.host}:{origin.port} did not answer") from None
    except OSError as exc:
        raise UpstreamError(502, f"{origin.host}:{origin.port}: {exc.strerror or exc}") from None


async def fetch(target: Target, download: Download, cached_mtime: float | None) -> None:
    """Download `target` into `download.part` and move it into place; record the outcome."""
    origin = target.origin
    host = origin.host if origin.port in (80, 443) else f"{origin.host}:{origin.port}"
    lines = [f"GET {target.raw_path} HTTP/1.1", f"Host: {host}", f"User-Agent: {AGENT}",
             "Accept-Encoding: identity", "Connection: close"]
    if cached_mtime is not None:
        lines.append(f"If-Modified-Since: {email.utils.formatdate(cached_mtime, usegmt=True)}")
    writer = None
    try:
        reader, writer = await open_upstream(origin)
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status_line = await asyncio.wait_for(read_line(reader), UPSTREAM_IDLE)
        parts = status_line.decode("latin-1").split(None, 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise UpstreamError(502, "upstream sent no HTTP status")
        status = int(parts[1])
        headers = await asyncio.wait_for(read_headers(reader), UPSTREAM_IDLE)
        if status == 304 and cached_mtime is not None:
            download.not_modified = True
            return
        if status != 200:
            raise UpstreamError(404 if status in (404, 410) else 502,
                                f"upstream answered {status}")
        await _receive(reader, headers, download)
    except TimeoutError:
        download.error = UpstreamError(504, "upstream stopped sending")
    except UpstreamError as exc:
        download.error = exc
    except OSError as exc:
        download.error = UpstreamError(502, f"upstream: {exc.strerror or exc}")
    except (Refused, ValueError):
        download.error = UpstreamError(502, "upstream sent a malformed answer")
    finally:
        download.done = True
        download.started.set()
        download.notify()
        if writer is not None:
            writer.close()
        if download.error is not None or download.not_modified:
            download.part.unlink(missing_ok=True)


async def _receive(reader: asyncio.StreamReader, headers: dict[str, str],
                   download: Download) -> None:
    """The body of a 200 answer into the part file, then the part file into place."""
    length = headers.get("content-length")
    download.size = int(length) if length and length.isdigit() else None
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    modified = headers.get("last-modified")
    with contextlib.suppress(TypeError, ValueError):
        download.last_modified = email.utils.parsedate_to_datetime(modified or "").timestamp()
    download.part.parent.mkdir(parents=True, exist_ok=True)
    with download.part.open("wb") as out:
        download.started.set()
        async for piece in _body(reader, download.size, chunked):
            out.write(piece)
            out.flush()
            download.written += len(piece)
            download.notify()
    if download.size is not None and download.written != download.size:
        raise UpstreamError(502, "upstream closed before the end of the file")
    download.size = download.written
    if download.last_modified:
        os.utime(download.part, (time.time(), download.last_modified))
    os.replace(download.part, download.final)


async def _body(reader: asyncio.StreamReader, size: int | None,
                chunked: bool) -> AsyncIterator[bytes]:
    """The pieces of a response body: by length, chunked, or up to the end of the stream."""
    async def read(n: int) -> bytes:
        return await asyncio.wait_for(reader.read(n), UPSTREAM_IDLE)

    if chunked:
        while True:
            size_line = (await asyncio.wait_for(read_line(reader), UPSTREAM_IDLE)).strip()
            chunk_size = int(size_line.split(b";")[0] or b"0", 16)
            if chunk_size == 0:
                await read_headers(reader)  # trailers
                return
            in_chunk = chunk_size
            while in_chunk:
                piece = await read(min(in_chunk, CHUNK))
                if not piece:
                    raise UpstreamError(502, "upstream closed inside a chunk")
                in_chunk -= len(piece)
                yield piece
            await read_line(reader)
    left = size
    while left is None or left > 0:
        piece = await read(CHUNK if left is None else min(left, CHUNK))
        if not piece:
            return
        if left is not None:
            left -= len(piece)
        yield piece


# --- the server ------------------------------------------------------------------------------

class Proxy:
    """The proxy of one sandbox: its archives, its cache, the downloads under way."""

    def __init__(self, origins: list[Origin], cache: Path,
                 log: Callable[[str], None] = lambda line: None) -> None:
        self.origins = origins
        self.cache = cache
        self.log = log
        self.downloads: dict[Path, Download] = {}
        self.clients = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection: requests one after another (apt pipelines them)."""
        peer = (writer.get_extra_info("peername") or ("?",))[0]
        self.clients += 1
        try:
            if self.clients > MAX_CLIENTS:
                return
            while await self._one(peer, reader, writer):
                pass
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away or stopped reading
        except Exception as exc:  # one bad connection must not stop the proxy
            self.log(f"{peer} error: {type(exc).__name__}: {exc}")
        finally:
            self.clients -= 1
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _one(self, peer: str, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> bool:
        """Answer one request; True to read another from the same connection."""
        try:
            request = await read_request(reader)
        except Refused as refused:
            await send(writer, error_response(refused.status, str(refused), False))
            return False
        except TimeoutError:
            return False
        if request is None:
            return False
        try:
            if request.method == "CONNECT":
                host, port = tunnel_allowed(request.target, self.origins)
                self.log(f"{peer} CONNECT {host}:{port}")
                await self._tunnel(host, port, reader, writer)
                return False
            if request.method not in ("GET", "HEAD"):
                raise Refused(403, f"{request.method} is not served")
            target = resolve(request.target, self.origins)
        except Refused as refused:
            self.log(f"{peer} {request.method} {request.target[:200]} {refused.status} "
                     f"refused: {refused}")
            await send(writer, error_response(refused.status, str(refused), request.keep_alive))
            return request.keep_alive
        return await self._serve(peer, request, target, writer)

    async def _serve(self, peer: str, request: Request, target: Target,
                     writer: asyncio.StreamWriter) -> bool:
        path = target.cache_file(self.cache)
        if target.immutable and path.is_file():
            source = "hit"
        else:
            download = self.downloads.get(path) or self._start(target, path)
            await download.started.wait()
            if download.error and not path.is_file():
                error = download.error
                self.log(f"{peer} {request.method} {request.target} {error.status} {error}")
                await send(writer, error_response(error.status, str(error), request.keep_alive))
                return request.keep_alive
            if download.error:
                source = f"stale ({download.error})"
            elif download.not_modified:
                source = "checked"
            elif download.done:
                source = "miss"
            else:  # arriving: no await between this check and opening the part file
                await self._send_growing(request, download, writer)
                self.log(f"{peer} {request.method} {request.target} 200 miss")
                return request.keep_alive
        await self._send_file(request, path, writer)
        self.log(f"{peer} {request.method} {request.target} 200 {source}")
        return request.keep_alive

    def _start(self, target: Target, path: Path) -> Download:
        part = path.with_name(f".{path.name}.part-{os.getpid()}-{next(_part_numbers)}")
        mtime = path.stat().st_mtime if path.is_file() else None
        download = Download(final=path, part=part)
        self.downloads[path] = download
        task = asyncio.get_running_loop().create_task(fetch(target, download, mtime))
        task.add_done_callback(lambda _: self.downloads.pop(path, None))
        return download

    @staticmethod
    def _head(request: Request, size: int, mtime: float | None) -> bytes:
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream",
                   "Connection": "keep-alive" if request.keep_alive else "close"}
        if mtime:
            headers["Last-Modified"] = email.utils.formatdate(mtime, usegmt=True)
        return response_head(200, "OK", headers)

    async def _send_file(self, request: Request, path: Path,
                         writer: asyncio.StreamWriter) -> None:
        """A cached file, or 304 when the client's copy is as new."""
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            os.utime(handle.fileno(), (time.time(), info.st_mtime))  # last use, for pruning
            since = request.headers.get("if-modified-since")
            if since and not request.headers.get("range"):
                with contextlib.suppress(TypeError, ValueError):
                    if int(info.st_mtime) <= email.utils.parsedate_to_datetime(
                            since).timestamp():
                        await send(writer, response_head(304, "Not Modified", {
                            "Connection": "keep-alive" if request.keep_alive else "close"}))
                        return
            await send(writer, self._head(request, info.st_size, info.st_mtime))
            if request.method == "GET" and info.st_size:
                await asyncio.get_running_loop().sendfile(writer.transport, handle, 0,
                                                          info.st_size)

    async def _send_growing(self, request: Request, download: Download,
                            writer: asyncio.StreamWriter) -> None:
        """A file while it downloads: what has arrived, then each piece as it comes."""
        if download.size is None:  # no length announced: wait for the whole file
            while not download.done:
                await download.progress.wait()
            if download.error:
                raise ConnectionError("download failed")
            await self._send_file(request, download.final, writer)
            return
        with download.part.open("rb") as handle:
            await send(writer, self._head(request, download.size, download.last_modified))
            sent = 0
            while request.method == "GET" and sent < download.size:
                if sent < download.written:
                    piece = handle.read(min(download.written - sent, CHUNK))
                    await send(writer, piece)
                    sent += len(piece)
                elif download.error or download.done:
                    # The client sees a short body and retries; nothing wrong is cached.
                    raise ConnectionError("download failed")
                else:
                    await download.progress.wait()

    async def _tunnel(self, host: str, port: int, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                          UPSTREAM_CONNECT)
        except (OSError, TimeoutError):
            await send(writer, error_response(502, f"{host}:{port} cannot be reached", False))
            return
        await send(writer, b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, TimeoutError):
                while piece := await asyncio.wait_for(src.read(CHUNK), TUNNEL_IDLE):
                    dst.write(piece)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.write_eof()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            up_writer.close()


def prune(cache: Path, now: float | None = None) -> int:
    """Remove cached files unused for UNUSED_DAYS and downloads a crash left. Returns how many."""
    now = now or time.time()
    removed = 0
    for path in cache.rglob("*"):
        try:
            info = path.lstat()
        except OSError:
            continue
        stale_part = ".part-" in path.name and now - info.st_mtime > 86400
        unused = not path.name.startswith(".") and now - info.st_atime > UNUSED_DAYS * 86400
        if stat.S_ISREG(info.st_mode) and (stale_part or unused):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


async def serve(address: str, port: int, proxy: Proxy,
                ready: Callable[[], Awaitable[None]] | None = None) -> None:
    """Listen on address:port until SIGTERM or SIGINT."""
    server = await asyncio.start_server(proxy.handle, address, port, reuse_address=True,
                                        limit=MAX_LINE * 2)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        if ready:
            await ready()
        await stop.wait()


def main(argv: list[str]) -> int:
    """`python -m pifleet.sandbox.aptproxy CONFIG.json`: run the proxy the file describes."""
    if len(argv) != 1:
        print("usage: python -m pifleet.sandbox.aptproxy CONFIG.json", file=sys.stderr)
        return 2
    config = json.loads(Path(argv[0]).read_text())
    cache = Path(config["cache"])
    cache.mkdir(parents=True, exist_ok=True)
    origins = [Origin.parse(uri) for uri in config["archives"]]

    def log(line: str) -> None:
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}", flush=True)

    log(f"serving {', '.join(config['archives'])} on {config['address']}:{config['port']}; "
        f"pruned {prune(cache)} unused cached files")
    try:
        asyncio.run(serve(config["address"], int(config["port"]), Proxy(origins, cache, log)))
    except OSError as exc:
        log(f"cannot listen on {config['address']}:{config['port']}: {exc.strerror or exc}")
        return 1
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
