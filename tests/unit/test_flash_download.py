"""Downloads against a real HTTP server on 127.0.0.1: cache, resume, checksum, parallel runs."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from pifleet.errors import BadInput
from pifleet.flash import download, sources

BODY = os.urandom(3 * 1024 * 1024 + 17)
SHA = hashlib.sha256(BODY).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves BODY at /img.xz with Range support, and a checksum file; counts requests."""

    requests: ClassVar[list[str]] = []
    ranges: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        Handler.requests.append(self.path)
        if self.path == "/img.sha256":
            self._send(200, f"{SHA}  img.xz\n".encode())
            return
        if self.path != "/img.xz":
            self._send(404, b"")
            return
        header = self.headers.get("Range")
        if header:
            Handler.ranges.append(header)
            start = int(header.split("=")[1].split("-")[0])
            if start >= len(BODY):
                self._send(416, b"")
                return
            self._send(206, BODY[start:], {"Content-Range":
                                           f"bytes {start}-{len(BODY) - 1}/{len(BODY)}"})
            return
        self._send(200, BODY)

    def _send(self, code: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.requests, Handler.ranges = [], []
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_is_cached_by_url_and_checksum(server: str, tmp_path: Path) -> None:
    url = f"{server}/img.xz"
    path = download.download(url, SHA, root=tmp_path)
    assert path.read_bytes() == BODY
    assert not list(path.parent.glob("*.part"))
    again = download.download(url, SHA, root=tmp_path)
    assert again == path
    assert Handler.requests.count("/img.xz") == 1  # second call served from the cache
    assert download.cache_path(url, None, tmp_path) != path


def test_partial_download_is_resumed_with_a_range_request(server: str, tmp_path: Path) -> None:
    url = f"{server}/img.xz"
    final = download.cache_path(url, SHA, tmp_path)
    final.parent.mkdir(parents=True)
    part = final.with_name(final.name + ".part")
    part.write_bytes(BODY[:1_000_000])
    path = download.download(url, SHA, root=tmp_path)
    assert path.read_bytes() == BODY
    assert Handler.ranges == ["bytes=1000000-"]


def test_checksum_mismatch_keeps_nothing(server: str, tmp_path: Path) -> None:
    url = f"{server}/img.xz"
    with pytest.raises(BadInput, match="expected"):
        download.download(url, "0" * 64, root=tmp_path)
    assert not download.cache_path(url, "0" * 64, tmp_path).exists()
    assert not list(tmp_path.rglob("*.part"))


def test_parallel_runs_share_one_download(server: str, tmp_path: Path) -> None:
    url = f"{server}/img.xz"
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(
        download.download(url, SHA, root=tmp_path))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert results[0].read_bytes() == BODY
    assert Handler.requests.count("/img.xz") == 1


def test_http_error_and_checksum_file(server: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="404"):
        download.download(f"{server}/missing.img", None, root=tmp_path)
    text = download.fetch_text(f"{server}/img.sha256")
    assert download.checksum_from(text, "img.xz") == SHA


def test_resolve_url_and_local_checksum(server: str, tmp_path: Path) -> None:
    source = sources.resolve(f"{server}/img.xz", SHA.upper(), cache=tmp_path)
    assert source.path.read_bytes() == BODY
    local = tmp_path / "local.img"
    local.write_bytes(b"x" * 4096)
    with pytest.raises(BadInput, match="SHA-256 is"):
        sources.resolve(str(local), "1" * 64)
    with pytest.raises(BadInput, match="not a SHA-256"):
        sources.resolve(str(local), "abc")
    with pytest.raises(BadInput, match="catalog"):
        sources.resolve("no-such-image-name")
