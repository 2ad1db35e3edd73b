"""Checksum listings that name other files, and a chunked download cut short (real HTTP server
on 127.0.0.1)."""

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
from pifleet.flash import download

BODY = os.urandom(700_000)
SHA = hashlib.sha256(BODY).hexdigest()
OTHER = hashlib.sha256(b"other").hexdigest()


def test_a_listing_that_names_only_other_files_is_refused() -> None:
    with pytest.raises(BadInput, match=r"no SHA-256 for img\.xz.*other\.img"):
        download.checksum_from(f"{OTHER}  other.img\n", "img.xz")
    with pytest.raises(BadInput, match="no SHA-256"):
        download.checksum_from(f"{OTHER}  other.img\n{SHA}\n", "img.xz")


def test_the_named_figure_and_a_lone_figure_are_taken() -> None:
    listing = f"{OTHER}  other.img\n{SHA.upper()} *dir/img.xz\n"
    assert download.checksum_from(listing, "img.xz") == SHA
    assert download.checksum_from(f"{SHA}\n", "img.xz") == SHA
    assert download.checksum_from(f"SHA256 (img.xz) = {SHA}\n", "img.xz") == SHA
    with pytest.raises(BadInput, match="no SHA-256"):
        download.checksum_from(f"{SHA}\n{OTHER}\n", "img.xz")  # two lone figures: which?
    with pytest.raises(BadInput, match="no SHA-256"):
        download.checksum_from("not a listing\n", "img.xz")


class Chunked(http.server.BaseHTTPRequestHandler):
    """Serves BODY chunked; the first answer stops mid-chunk and closes the connection."""

    protocol_version = "HTTP/1.1"
    answers: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        header = self.headers.get("Range")
        start = int(header.split("=")[1].split("-")[0]) if header else 0
        Chunked.answers.append(header or "")
        self.send_response(206 if start else 200)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        self.end_headers()
        rest = BODY[start:]
        if len(Chunked.answers) == 1:
            # One whole chunk, then a chunk of 400000 bytes announced, 100000 sent, hang up.
            self.wfile.write(b"%x\r\n" % 200_000 + rest[:200_000] + b"\r\n")
            self.wfile.write(b"%x\r\n" % 400_000 + rest[200_000:300_000])
            self.wfile.flush()
            return
        self.wfile.write(b"%x\r\n" % len(rest) + rest + b"\r\n0\r\n\r\n")


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Chunked)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Chunked.answers = []
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_cut_chunked_download_is_reported_then_resumed(server: str, tmp_path: Path) -> None:
    url = f"{server}/img.xz"
    with pytest.raises(BadInput, match=r"download interrupted.*run again to resume"):
        download.download(url, SHA, root=tmp_path)
    part = download.cache_path(url, SHA, tmp_path).with_name("img.xz.part")
    assert part.exists() and BODY.startswith(part.read_bytes())
    assert part.stat().st_size == 200_000  # the whole chunk that came is kept
    path = download.download(url, SHA, root=tmp_path)
    assert path.read_bytes() == BODY
    assert Chunked.answers == ["", "bytes=200000-"]
