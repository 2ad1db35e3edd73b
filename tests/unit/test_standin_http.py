"""The API server stand-in never freezes for everyone, and refuses what it must not read.

Probed as an attacker on the same network would: a TCP connection that never says hello, a body
of unknown or endless length, an oversized body, malformed bodies. Every other client keeps
being answered.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from standin_cluster import Cluster, running_cluster

CM_PATH = "/api/v1/namespaces/default/configmaps"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("http")) as c:
        yield c


def tls(cluster: Cluster, cert: bool = False, timeout: float = 10) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", cluster.port), timeout=timeout)
    return cluster.context(cert).wrap_socket(raw, server_hostname="127.0.0.1")


def response(sock: ssl.SSLSocket) -> tuple[int, bytes]:
    """Status and whole body of one HTTP/1.1 response read from `sock`."""
    reader = sock.makefile("rb")
    resp = http.client.HTTPResponse(sock)  # type: ignore[arg-type]
    resp.fp = reader  # type: ignore[assignment]
    resp.begin()
    return resp.status, resp.read()


def test_a_silent_connection_does_not_stop_others(cluster: Cluster) -> None:
    """A TCP connection that never starts TLS must not hold up the next client."""
    silent = [socket.create_connection(("127.0.0.1", cluster.port)) for _ in range(3)]
    try:
        time.sleep(0.3)
        # Answered within a second although three connections sit in their handshake.
        status, doc = cluster.request("GET", "/api/v1/namespaces", timeout=1)
        assert status == 200 and doc["kind"] == "NamespaceList"
        got = cluster.kubectl("get", "namespaces", "--request-timeout=5s")
        assert "kube-system" in got.stdout
    finally:
        for s in silent:
            s.close()


def test_a_silent_tls_client_does_not_stop_others(cluster: Cluster) -> None:
    """After the handshake, a client that sends half a request line holds only itself."""
    with tls(cluster) as slow:
        slow.sendall(b"GET /api/v1/namespa")
        status, _ = cluster.request("GET", "/api/v1/namespaces", timeout=1)
        assert status == 200


def test_content_length_minus_one_is_refused_without_reading(cluster: Cluster) -> None:
    with tls(cluster, timeout=5) as s:
        s.sendall(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\n"
                  b"Host: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n"
                  + b"x" * 65536)
        # The stream stays open: a server reading "to the end" would never answer.
        status, body = response(s)
    assert status == 400, body


@pytest.mark.parametrize("cert", [False, True])
def test_a_declared_oversized_body_is_413_before_it_is_sent(cluster: Cluster,
                                                            cert: bool) -> None:
    with tls(cluster, cert=cert, timeout=5) as s:
        s.sendall(f"POST {CM_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {50 * 1024 * 1024}\r\n\r\n".encode())
        status, body = response(s)
    # Anonymous or admin, the body is never read: 413 (admin) or the refusal of the anonymous
    # request (403), either way at once.
    assert status in (413, 403)
    if cert:
        doc = json.loads(body)
        assert (doc["reason"], doc["code"]) == ("RequestEntityTooLarge", 413)
        assert "limit is 3145728" in doc["message"]


def test_an_oversized_configmap_is_413_and_a_large_one_is_stored(cluster: Cluster,
                                                                 tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"x" * (4 * 1024 * 1024))
    # kubectl sees the real server's answer: too large, nothing created.
    refused = cluster.kubectl("create", "configmap", "big", f"--from-file={blob}", check=False)
    assert refused.returncode != 0
    assert "Request entity too large: limit is 3145728" in refused.stderr
    assert cluster.request("GET", f"{CM_PATH}/big")[0] == 404
    ok = {"metadata": {"name": "fits"}, "data": {"blob": "x" * (1024 * 1024)}}
    status, _ = cluster.request("POST", CM_PATH, ok, timeout=30)
    assert status == 201


def test_an_endless_chunked_body_is_cut_off(cluster: Cluster) -> None:
    sent = 0
    chunk = b"a" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    answer = b""
    with tls(cluster, cert=True, timeout=10) as s:
        s.sendall(f"POST {CM_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n".encode())
        # Pour until the server answers, in one thread (an SSL socket cannot be shared), with
        # a non-blocking socket so that neither side waits for the other.
        s.setblocking(False)
        pending = frame
        deadline = time.monotonic() + 30
        while sent < 64 * 1024 * 1024 and time.monotonic() < deadline:
            try:
                answer = s.recv(65536)
                break
            except (ssl.SSLWantReadError, BlockingIOError):
                pass
            try:
                done = s.send(pending)
                sent += done
                pending = pending[done:] or frame
            except (ssl.SSLWantWriteError, BlockingIOError):
                time.sleep(0.001)
            except OSError:
                break
        s.settimeout(10)
        while answer and b"\r\n\r\n" not in answer:
            answer += s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert sent < 32 * 1024 * 1024  # refused near the limit, not after reading everything


@pytest.mark.parametrize(("raw", "content_type"), [
    (b"[" * 100000 + b"]" * 100000, "application/json"),
    (b'{"metadata": {"name": "\xff\xfe"}}', "application/json"),
    (b"{" + b'"a":{' * 5000 + b"}" * 5001, "application/json"),
    (b"a:\n" + b"".join(b" " * i + b"b:\n" for i in range(1, 600)), "application/yaml"),
    (b'["a list, not an object"]', "application/json"),
    (b"{not json", "application/json"),
])
def test_malformed_bodies_are_400(cluster: Cluster, raw: bytes, content_type: str) -> None:
    status, doc = cluster.request("POST", CM_PATH, raw=raw, content_type=content_type)
    assert (status, doc.get("reason")) == (400, "BadRequest"), doc
    assert doc["kind"] == "Status"


def test_the_server_still_answers_after_all_that(cluster: Cluster, tmp_path: Path) -> None:
    status, doc = cluster.request("GET", "/version", cert=False, timeout=2)
    assert status == 200 and doc["gitVersion"].startswith("v1.")
