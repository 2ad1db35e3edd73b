"""The sandbox's apt proxy against a real upstream web server on 127.0.0.1 and real sockets:
what it refuses, what it caches and revalidates, shared downloads, failures upstream."""

from __future__ import annotations

import asyncio
import email.utils
import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pifleet.sandbox.aptproxy import Origin, Proxy, Refused, Target, prune, resolve

MTIME = 1_700_000_000.0


class Upstream(http.server.ThreadingHTTPServer):
    """A Debian-archive-like web server: files by path, If-Modified-Since, and a few faults."""

    files: dict[str, tuple[bytes, float]]
    seen: list[tuple[str, str | None]]
    slow: set[str]
    truncate: set[str]


class UpstreamHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Upstream

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("If-Modified-Since")))
        if self.path not in self.server.files:
            self.send_error(404)
            return
        body, mtime = self.server.files[self.path]
        since = self.headers.get("If-Modified-Since")
        if since and email.utils.parsedate_to_datetime(since).timestamp() >= int(mtime):
            self.send_response(304)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Last-Modified", email.utils.formatdate(mtime, usegmt=True))
        self.end_headers()
        if self.path in self.server.truncate:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        step = len(body) // 8 + 1 if self.path in self.server.slow else len(body)
        for start in range(0, len(body), step):
            self.wfile.write(body[start:start + step])
            self.wfile.flush()
            if self.path in self.server.slow:
                time.sleep(0.15)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream(("127.0.0.1", 0), UpstreamHandler)
    server.files, server.seen, server.slow, server.truncate = {}, [], set(), set()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class Running:
    """A Proxy served on 127.0.0.1 from an event loop in a thread."""

    def __init__(self, origins: list[str], cache: Path) -> None:
        self.lines: list[str] = []
        self.proxy = Proxy([Origin.parse(o) for o in origins], cache, self.lines.append)
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(
                asyncio.start_server(self.proxy.handle, "127.0.0.1", 0))
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def get(self, url: str, method: str = "GET",
            headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.request(method, url, headers=headers or {})
            reply = conn.getresponse()
            return reply.status, reply.read(), dict(reply.getheaders())
        finally:
            conn.close()

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:  # keep-alive connections waiting for another request
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def archive(upstream: Upstream) -> str:
    return f"http://127.0.0.1:{upstream.server_address[1]}/debian"


@pytest.fixture
def proxy(archive: str, tmp_path: Path) -> Iterator[Running]:
    running = Running([archive], tmp_path / "cache")
    yield running
    running.close()


# --- which URLs are served -------------------------------------------------------------------

ORIGINS = [Origin.parse("http://Mirror.Example/debian"),
           Origin.parse("http://mirror.example/debian-security/"),
           Origin.parse("http://snap.example:8080/archive/debian/20250520T000000Z"),
           Origin.parse("https://secure.example/debian")]


@pytest.mark.parametrize("url", [
    "http://mirror.example/debian/dists/bookworm/InRelease",
    "http://MIRROR.example/debian/pool/main/h/hello/hello_2.10-3_amd64.deb",
    "http://mirror.example:80/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/ab12",
    "http://mirror.example/debian/pool/main/c/containerd/containerd_1.6.20%7eds1-1%2bdeb12u3"
    "_amd64.deb",
    "http://mirror.example/debian-security/dists/bookworm-security/InRelease",
    "http://snap.example:8080/archive/debian/20250520T000000Z/dists/bookworm/Release",
])
def test_archive_files_are_served(url: str) -> None:
    assert isinstance(resolve(url, ORIGINS), Target)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/debian/dists/bookworm/InRelease",  # loopback
    "http://localhost:8080/debian/pool/main/s/secret/secret_1_all.deb",
    "http://10.213.7.1:8080/dists/bookworm/Release",  # another sandbox's package server
    "http://93.184.216.34/debian/dists/bookworm/InRelease",  # the mirror by its address
    "http://mirror.example./debian/dists/bookworm/InRelease",  # another spelling
    "http://mirror.example:8080/debian/dists/bookworm/InRelease",  # another port
    "http://snap.example/archive/debian/20250520T000000Z/dists/bookworm/Release",
    "http://user:pw@mirror.example/debian/dists/bookworm/InRelease",
    "http://mirror.example@127.0.0.1/debian/dists/bookworm/InRelease",
    "http://mirror.example/debian/dists/bookworm/InRelease?doMaint=1",
    "http://mirror.example/debian/dists/../../etc/passwd",
    "http://mirror.example/debian/pool/%2e%2e/%2e%2e/etc/passwd",
    "http://mirror.example/debian/pool/..%2f..%2fetc/passwd",
    "http://mirror.example/debian/./pool/main/h/hello/hello_2.10-3_amd64.deb",
    "http://mirror.example/debian/README",  # the archive's host, not dists/ or pool/
    "http://mirror.example/debianpool/x.deb",
    "http://mirror.example/",
    "https://mirror.example/debian/dists/bookworm/InRelease",  # not a proxy GET
    "http://secure.example/debian/dists/bookworm/InRelease",  # https archive: tunnel only
    "/acng-report.html",
    "ftp://mirror.example/debian/dists/bookworm/InRelease",
])
def test_everything_else_is_refused(url: str) -> None:
    with pytest.raises(Refused) as refused:
        resolve(url, ORIGINS)
    assert refused.value.status == 403


def test_package_files_and_by_hash_indexes_never_change_the_rest_is_checked() -> None:
    assert resolve("http://mirror.example/debian/pool/main/h/hello/h_1_all.deb", ORIGINS).immutable
    assert resolve("http://mirror.example/debian/dists/bookworm/main/binary-amd64/by-hash/"
                   "SHA256/ab12", ORIGINS).immutable
    assert not resolve("http://mirror.example/debian/dists/bookworm/InRelease",
                       ORIGINS).immutable
    assert not resolve("http://mirror.example/debian/dists/bookworm/main/binary-amd64/"
                       "Packages.xz", ORIGINS).immutable


# --- serving through real sockets ------------------------------------------------------------

def test_refused_requests_reach_nothing(proxy: Running, upstream: Upstream) -> None:
    port = upstream.server_address[1]
    upstream.files["/secret/dists/x/Release"] = (b"secret", MTIME)
    for url in (f"http://127.0.0.1:{port}/secret/dists/x/Release",
                f"http://localhost:{port}/debian/dists/bookworm/InRelease",
                "/acng-report.html", "/"):
        status, body, _ = proxy.get(url)
        assert status == 403 and b"secret" not in body, url
    status, _, _ = proxy.get(f"http://127.0.0.1:{port}/debian/dists/x/Release", method="POST")
    assert status in (400, 403)
    assert upstream.seen == []


def test_package_file_comes_from_upstream_once_then_from_the_cache(
        proxy: Running, upstream: Upstream, archive: str) -> None:
    upstream.files["/debian/pool/main/h/hello/hello_1_all.deb"] = (b"x" * 5000, MTIME)
    url = f"{archive}/pool/main/h/hello/hello_1_all.deb"
    for _ in range(3):
        status, body, headers = proxy.get(url)
        assert status == 200 and body == b"x" * 5000
        assert headers["Last-Modified"] == email.utils.formatdate(MTIME, usegmt=True)
    assert len(upstream.seen) == 1
    status, body, headers = proxy.get(url, method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == "5000"


def test_indexes_are_checked_upstream_each_time(proxy: Running, upstream: Upstream,
                                                 archive: str) -> None:
    upstream.files["/debian/dists/bookworm/InRelease"] = (b"first", MTIME)
    url = f"{archive}/dists/bookworm/InRelease"
    assert proxy.get(url)[1] == b"first"
    assert proxy.get(url)[1] == b"first"
    assert upstream.seen[1] == ("/debian/dists/bookworm/InRelease",
                                email.utils.formatdate(MTIME, usegmt=True))
    upstream.files["/debian/dists/bookworm/InRelease"] = (b"second", MTIME + 60)
    assert proxy.get(url)[1] == b"second"
    # apt's own If-Modified-Since gets 304 when its copy is current.
    status, body, _ = proxy.get(url, headers={
        "If-Modified-Since": email.utils.formatdate(MTIME + 60, usegmt=True)})
    assert status == 304 and body == b""


def test_cached_index_is_served_when_upstream_is_gone_missing_file_is_not(
        archive: str, upstream: Upstream, tmp_path: Path) -> None:
    upstream.files["/debian/dists/bookworm/InRelease"] = (b"kept", MTIME)
    first = Running([archive], tmp_path / "cache")
    try:
        assert first.get(f"{archive}/dists/bookworm/InRelease")[1] == b"kept"
    finally:
        first.close()
    upstream.shutdown()
    upstream.server_close()
    again = Running([archive], tmp_path / "cache")
    try:
        status, body, _ = again.get(f"{archive}/dists/bookworm/InRelease")
        assert status == 200 and body == b"kept"
        status, body, _ = again.get(f"{archive}/dists/bookworm/Release")
        assert status == 502 and b"apt proxy" in body
    finally:
        again.close()


def test_upstream_404_is_passed_on_and_not_cached(proxy: Running, upstream: Upstream,
                                                  archive: str) -> None:
    url = f"{archive}/dists/bookworm/main/i18n/Translation-en.xz"
    assert proxy.get(url)[0] == 404
    upstream.files["/debian/dists/bookworm/main/i18n/Translation-en.xz"] = (b"now", MTIME)
    assert proxy.get(url)[:2] == (200, b"now")


def test_nodes_asking_at_once_share_one_download_and_read_it_as_it_arrives(
        proxy: Running, upstream: Upstream, archive: str) -> None:
    path = "/debian/pool/main/c/containerd/containerd_1_amd64.deb"
    body = os.urandom(400_000)
    upstream.files[path] = (body, MTIME)
    upstream.slow.add(path)  # eight pieces, 0.15 s apart
    first_bytes: list[float] = []

    def fetch() -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=20)
        conn.request("GET", f"{archive}/pool/main/c/containerd/containerd_1_amd64.deb")
        reply = conn.getresponse()
        data = reply.read(1000)
        first_bytes.append(time.monotonic())
        data += reply.read()
        conn.close()
        return data

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: fetch(), range(3)))
    done = time.monotonic()
    assert results == [body] * 3
    assert [p for p, _ in upstream.seen] == [path]
    # Everyone had bytes long before the download (about 1.2 s) ended.
    assert max(first_bytes) - started < (done - started) / 2


def test_a_download_cut_short_is_not_cached(proxy: Running, upstream: Upstream,
                                            archive: str) -> None:
    path = "/debian/pool/main/b/broken/broken_1_all.deb"
    upstream.files[path] = (b"y" * 10_000, MTIME)
    upstream.truncate.add(path)
    with pytest.raises(http.client.IncompleteRead):
        proxy.get(f"{archive}/pool/main/b/broken/broken_1_all.deb")
    upstream.truncate.clear()
    assert proxy.get(f"{archive}/pool/main/b/broken/broken_1_all.deb")[:2] == (200, b"y" * 10_000)
    assert len(upstream.seen) == 2


def test_pipelined_requests_are_answered_in_order(proxy: Running, upstream: Upstream,
                                                  archive: str) -> None:
    upstream.files["/debian/pool/a_1_all.deb"] = (b"aaa", MTIME)
    upstream.files["/debian/pool/b_1_all.deb"] = (b"bbbb", MTIME)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as conn:
        conn.sendall("".join(f"GET {archive}/pool/{n}_1_all.deb HTTP/1.1\r\nHost: x\r\n\r\n"
                             for n in ("a", "b", "a")).encode())
        data = b""
        while data.count(b"HTTP/1.1 200") < 3 or not data.endswith(b"aaa"):
            piece = conn.recv(65536)
            assert piece
            data += piece
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in data.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"aaa", b"bbbb", b"aaa"]


def test_malformed_requests_get_400(proxy: Running) -> None:
    for raw in (b"GET " + b"a" * 20000 + b" HTTP/1.1\r\n\r\n", b"NONSENSE\r\n\r\n",
                b"GET http://x/ HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"):
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as conn:
            conn.sendall(raw)
            assert conn.recv(100).startswith(b"HTTP/1.1 400")


def test_tunnels_only_to_https_archives(tmp_path: Path) -> None:
    echo = socket.create_server(("127.0.0.1", 0))
    port = echo.getsockname()[1]

    def answer() -> None:
        conn, _ = echo.accept()
        with conn:
            conn.sendall(conn.recv(100).upper())

    threading.Thread(target=answer, daemon=True).start()
    running = Running([f"https://127.0.0.1:{port}/debian"], tmp_path / "cache")
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as conn:
            conn.sendall(b"CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n")
            assert conn.recv(100).startswith(b"HTTP/1.1 403")
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as conn:
            conn.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
            assert conn.recv(100).startswith(b"HTTP/1.1 200")
            conn.sendall(b"tls would go here")
            assert conn.recv(100) == b"TLS WOULD GO HERE"
    finally:
        running.close()
        echo.close()


def test_prune_removes_unused_files_and_abandoned_downloads(tmp_path: Path) -> None:
    now = time.time()
    old, fresh, part = tmp_path / "h_80/aa/old", tmp_path / "h_80/bb/fresh", \
        tmp_path / "h_80/cc/.x.part-1-1"
    for path in (old, fresh, part):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"1")
    os.utime(old, (now - 40 * 86400, MTIME))
    os.utime(fresh, (now - 86400, MTIME))
    os.utime(part, (now, now - 2 * 86400))
    assert prune(tmp_path, now) == 2
    assert fresh.exists() and not old.exists() and not part.exists()


def test_runs_as_a_program_and_stops_on_sigterm(archive: str, upstream: Upstream,
                                                tmp_path: Path) -> None:
    upstream.files["/debian/dists/bookworm/Release"] = (b"release", MTIME)
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "proxy.json"
    config.write_text(json.dumps({"address": "127.0.0.1", "port": port, "archives": [archive],
                                  "cache": str(tmp_path / "cache")}))
    proc = subprocess.Popen([sys.executable, "-m", "pifleet.sandbox.aptproxy", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", f"{archive}/dists/bookworm/Release")
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert conn.getresponse().read() == b"release"
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out
    assert "dists/bookworm/Release 200 miss" in out and "stopped" in out
