"""The sandbox's apt proxy serves this machine's Debian archives and nothing else."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from pifleet.sandbox import Sandbox
from pifleet.sandbox.sources import host_mirror

pytestmark = pytest.mark.sandbox


def status_through_proxy(sandbox: Sandbox, url: str) -> int:
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": sandbox.apt_proxy_url}))
    try:
        with opener.open(url, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_proxy_serves_the_mirror(sandbox: Sandbox) -> None:
    assert status_through_proxy(sandbox, f"{host_mirror().uri}/dists/bookworm/Release") == 200


def test_proxy_refuses_any_other_url(sandbox: Sandbox) -> None:
    # A loopback URL: if the proxy did forward it, the attempt would stay on this machine.
    assert status_through_proxy(sandbox, "http://127.0.0.1:9/anything") == 403
