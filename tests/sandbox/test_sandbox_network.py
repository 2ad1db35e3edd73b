"""What a sandbox node can reach on this machine: its own sandbox's services, nothing else.

Two sandboxes share the module (2 nodes, and 1 node as "the other sandbox"). From a node, the
apt proxy refuses everything but this machine's Debian archives (a web server on this
machine's loopback, the other sandbox, host names and addresses apt was not given, the proxy's
own pages), while apt keeps installing through it; TCP connections to this machine's other
addresses fail, those to the node's own services work, and SSH from this machine still does.
`sandbox list` names missing and stray rules, and `up`/`down` repair them.

Every address a node is pointed at here is on this machine (loopback, a test address this
module adds to `lo`, the bridges, the main interface's own address); the FORWARD rules keep
anything that would be routed from leaving.
"""

from __future__ import annotations

import functools
import http.server
import ipaddress
import json
import shlex
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, suppress
from pathlib import Path

import pytest

from pifleet.events import Emitter
from pifleet.sandbox import Sandbox, down, hostservices, list_sandboxes, network, up
from pifleet.sandbox.addresses import Plan
from pifleet.sandbox.naming import Names
from pifleet.sandbox.sources import host_mirror

pytestmark = pytest.mark.sandbox
SSHRun = Callable[[str, str], tuple[int, str, str]]
SandboxFactory = Callable[[Path, int], AbstractContextManager[Sandbox]]
SECRET = "only-for-this-machine-7f3a"
TEST_ADDRESS = "198.51.100.213"  # TEST-NET-2, put on `lo` by the `test_address` fixture
# Files a caching apt proxy takes for archive files (an index and a package) holding SECRET.
PROBES = ("dists/bookworm/Release", "pool/main/s/secret/secret_1.0_all.deb")


def write_probes(root: Path) -> None:
    for probe in PROBES:
        (root / probe).parent.mkdir(parents=True, exist_ok=True)
        (root / probe).write_text(SECRET + "\n")


def sudo(command: str) -> str:
    """A root shell command line for the sandbox user (sudo asks for the password)."""
    return f"echo hypriot | sudo -S -p '' sh -c {shlex.quote(command)}"


def proxy_port(sandbox: Sandbox) -> int:
    port = urllib.parse.urlsplit(sandbox.apt_proxy_url).port
    assert port
    return port


@pytest.fixture(scope="module")
def sandbox(sandbox_factory: SandboxFactory,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with sandbox_factory(tmp_path_factory.mktemp("net"), 2) as info:
        (info.packages_dir / "probe.txt").write_text("own package server\n")
        yield info


@pytest.fixture(scope="module")
def other(sandbox: Sandbox, sandbox_factory: SandboxFactory, node_ssh: SSHRun,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A second sandbox: its package server and its node's web server on port 80 hold
    PROBES."""
    with sandbox_factory(tmp_path_factory.mktemp("other"), 1) as info:
        write_probes(info.packages_dir)
        files = " && ".join(f"mkdir -p /srv/probe/{Path(p).parent} && echo {SECRET} > "
                            f"/srv/probe/{p}" for p in PROBES)
        status, _, err = node_ssh(info.nodes[0].address, sudo(
            f"{files} && (setsid python3 -m http.server 80 --directory /srv/probe "
            ">/dev/null 2>&1 &)"))
        assert status == 0, err
        yield info


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def loopback_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Web servers on this machine's loopback only, serving PROBES: their base URLs (one on
    a free port of 127.0.0.1, one on port 80 of another loopback address when it is free)."""
    root = tmp_path_factory.mktemp("loopback-web")
    write_probes(root)
    handler = functools.partial(QuietHandler, directory=str(root))
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)]
    with suppress(OSError):
        servers.append(http.server.ThreadingHTTPServer(("127.77.0.1", 80), handler))
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [f"http://{host}:{port}" for host, port in (s.server_address[:2] for s in servers)]
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def wildcard_port() -> Iterator[int]:
    """A TCP service of this machine on every address (as sshd or a database often is): it
    greets with a line. Its port."""
    listener = socket.create_server(("0.0.0.0", 0))
    listener.settimeout(0.5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"HELLO\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(5)
    listener.close()


@pytest.fixture(scope="module")
def test_address() -> Iterator[str]:
    """TEST_ADDRESS on this machine's `lo` for the module (an address of this machine that
    belongs to no sandbox)."""
    subprocess.run(["ip", "addr", "add", f"{TEST_ADDRESS}/32", "dev", "lo"], check=True)
    try:
        yield TEST_ADDRESS
    finally:
        subprocess.run(["ip", "addr", "del", f"{TEST_ADDRESS}/32", "dev", "lo"], check=True)


def local_addresses() -> set[str]:
    out = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True,
                         check=True).stdout
    return {a["local"] for link in json.loads(out) for a in link.get("addr_info", [])}


def main_address() -> str | None:
    """This machine's IPv4 address on the interface of its default route, if any."""
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "default"],
                                       capture_output=True, text=True, check=True).stdout)
    if not routes:
        return None
    out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", routes[0]["dev"]],
                         capture_output=True, text=True, check=True).stdout
    found = [a["local"] for link in json.loads(out) for a in link.get("addr_info", [])]
    return found[0] if found else None


def tcp_reach(node_ssh: SSHRun, address: str, targets: list[tuple[str, int]]) -> dict[str, str]:
    """From the node at `address`, try a TCP connection to each target at once (3 s each):
    {"ADDR:PORT": "open" | "closed"}."""
    tries = " ".join(f"{a}:{p}" for a, p in targets)
    script = (f"for t in {tries}; do (timeout 3 bash -c \"exec 3<>/dev/tcp/${{t%:*}}/${{t#*:}}\""
              " 2>/dev/null && echo \"$t open\" || echo \"$t closed\") & done; wait")
    status, out, err = node_ssh(address, script)
    assert status == 0, err
    return dict(line.split() for line in out.splitlines())


def through_proxy(node_ssh: SSHRun, sandbox: Sandbox, url: str,
                  proxy: str | None = None) -> tuple[str, str]:
    """(HTTP status, body) of `url` fetched from the first node through its apt proxy."""
    proxy = proxy or sandbox.apt_proxy_url
    command = (f"curl -s --path-as-is --connect-timeout 3 --max-time 20 -x {shlex.quote(proxy)} "
               f"-w '\\n%{{http_code}}' {shlex.quote(url)}")
    _, out, _ = node_ssh(sandbox.nodes[0].address, command)
    body, _, code = out.rpartition("\n")
    return code, body


def test_proxy_serves_this_machines_debian_archive(sandbox: Sandbox, node_ssh: SSHRun) -> None:
    code, body = through_proxy(node_ssh, sandbox, f"{host_mirror().uri}/dists/bookworm/Release")
    assert code == "200" and "Codename: bookworm" in body, (code, body[:300])


def test_proxy_refuses_this_machines_loopback(sandbox: Sandbox, node_ssh: SSHRun,
                                              loopback_web: list[str]) -> None:
    port = urllib.parse.urlsplit(loopback_web[0]).port
    bases = [*loopback_web, f"http://localhost:{port}", f"http://127.1.2.3:{port}"]
    for base in bases:
        for probe in PROBES:
            code, body = through_proxy(node_ssh, sandbox, f"{base}/{probe}")
            assert code == "403" and SECRET not in body, (base, probe, code, body)
    # The loopback servers themselves answer: the refusal is the proxy's.
    for base in loopback_web:
        with urllib.request.urlopen(f"{base}/{PROBES[1]}", timeout=5) as reply:
            assert SECRET in reply.read().decode()


def test_proxy_refuses_the_other_sandbox(sandbox: Sandbox, other: Sandbox,
                                         node_ssh: SSHRun) -> None:
    for url in (*(f"{other.packages_url}/{probe}" for probe in PROBES),
                f"http://{other.bridge_address}:{proxy_port(other)}/{PROBES[1]}",
                *(f"http://{other.nodes[0].address}/{probe}" for probe in PROBES),
                f"{sandbox.packages_url}/probe.txt",  # its own, which apt reaches directly
                ):
        code, body = through_proxy(node_ssh, sandbox, url)
        assert code == "403" and SECRET not in body, (url, code, body)
    # Nor does the other sandbox's proxy serve this node.
    code, _ = through_proxy(node_ssh, sandbox, f"{host_mirror().uri}/dists/bookworm/Release",
                            proxy=other.apt_proxy_url)
    assert code != "200"


def test_proxy_refuses_names_and_addresses_apt_was_not_given(sandbox: Sandbox,
                                                             node_ssh: SSHRun,
                                                             test_address: str) -> None:
    mirror = urllib.parse.urlsplit(host_mirror().uri)
    assert mirror.hostname
    # This machine's names and addresses, and its mirror's, in case a proxy did fetch them.
    urls = [f"http://{test_address}/{PROBES[1]}",
            f"{mirror.scheme}://{mirror.hostname}/{PROBES[0]}",  # the mirror's host, elsewhere
            f"{host_mirror().uri}/../../etc/passwd",
            f"{host_mirror().uri}/%2e%2e/%2e%2e/etc/passwd",
            f"{host_mirror().uri}/dists/bookworm/Release?x=1"]
    if socket.gethostbyname(socket.gethostname()) in local_addresses() | {"127.0.0.1"}:
        urls.append(f"http://{socket.gethostname()}/{PROBES[1]}")
    try:
        mirror_ip = ipaddress.ip_address(mirror.hostname)
    except ValueError:  # a name: the same archive by its address is not what apt asks for
        mirror_ip = ipaddress.ip_address(socket.gethostbyname(mirror.hostname))
        port = f":{mirror.port}" if mirror.port else ""
        urls.append(f"http://{mirror_ip}{port}{mirror.path}/dists/bookworm/Release")
    for url in urls:
        code, _ = through_proxy(node_ssh, sandbox, url)
        assert code == "403", (url, code)
    # No tunnels either.
    _, out, _ = node_ssh(sandbox.nodes[0].address,
                         f"curl -s -o /dev/null --max-time 20 -p -x {sandbox.apt_proxy_url} "
                         f"-w '%{{http_connect}}' {shlex.quote(host_mirror().uri)}/")
    assert out.strip() != "200"


def test_proxy_has_no_pages_of_its_own(sandbox: Sandbox, node_ssh: SSHRun) -> None:
    base = f"http://{sandbox.bridge_address}:{proxy_port(sandbox)}"
    for path in ("/", "/acng-report.html", "/acng-report.html?doMaint=Start",
                 "/apt-cacher?doDelete=1"):
        _, out, _ = node_ssh(sandbox.nodes[0].address,
                             f"curl -s --max-time 20 -w '\\n%{{http_code}}' "
                             f"{shlex.quote(base + path)}")
        body, _, code = out.rpartition("\n")
        assert code in ("400", "403", "404"), (path, code)
        assert "maint" not in body.lower() and "cacher" not in body.lower(), body
        code, body = through_proxy(node_ssh, sandbox, base + path)
        assert code == "403", (path, code)


def test_apt_installs_through_the_proxy_again_and_again(sandbox: Sandbox, node_ssh: SSHRun,
                                                        sandbox_factory: SandboxFactory,
                                                        tmp_path: Path) -> None:
    """Fresh package lists and an empty apt cache each round, on every node at once, while
    another sandbox comes up and goes down twice: this sandbox's proxy never restarts."""
    apt = "DEBIAN_FRONTEND=noninteractive timeout 300 apt-get -q"
    round_ = sudo(f"rm -rf /var/lib/apt/lists/* && {apt} update && {apt} install -y hello "
                  f"&& hello && {apt} purge -y hello && {apt} clean")

    def install(address: str) -> list[tuple[int, float, str]]:
        results = []
        for _ in range(3):
            started = time.monotonic()
            status, out, err = node_ssh(address, round_)
            results.append((status, time.monotonic() - started, out[-1500:] + err[-1500:]))
        return results

    proxy_pids = hostservices.apt_proxy_pids(sandbox.ident)
    assert proxy_pids
    with ThreadPoolExecutor(max_workers=len(sandbox.nodes)) as pool:
        running = pool.map(install, [n.address for n in sandbox.nodes])
        for turn in range(2):
            with sandbox_factory(tmp_path / f"passing-{turn}", 1):
                pass
        per_node = list(running)
    assert hostservices.apt_proxy_pids(sandbox.ident) == proxy_pids
    for node, results in zip(sandbox.nodes, per_node, strict=True):
        for status, _, output in results:
            assert status == 0, f"{node.name}: {output}"
            assert "Hello, world!" in output


def test_node_reaches_only_its_own_services(sandbox: Sandbox, other: Sandbox,
                                            node_ssh: SSHRun, wildcard_port: int,
                                            test_address: str) -> None:
    here = local_addresses()
    forbidden = [(sandbox.bridge_address, wildcard_port), (test_address, wildcard_port),
                 (other.bridge_address, wildcard_port), (other.bridge_address, 8080),
                 (other.bridge_address, proxy_port(other))]
    main = main_address()
    if main:
        forbidden.append((main, wildcard_port))
    # Each is an address of this machine (so nothing is sent beyond it), and answers there.
    for address, port in forbidden:
        assert address in here, address
        with socket.create_connection((address, port), timeout=5):
            pass
    own = [(sandbox.bridge_address, 8080), (sandbox.bridge_address, proxy_port(sandbox))]
    for node in sandbox.nodes:
        reach = tcp_reach(node_ssh, node.address, forbidden + own)
        for address, port in forbidden:
            assert reach[f"{address}:{port}"] == "closed", (node.name, address, port)
        for address, port in own:
            assert reach[f"{address}:{port}"] == "open", (node.name, address, port)
    # The other sandbox's node is held to its own services the same way.
    reach = tcp_reach(node_ssh, other.nodes[0].address,
                      [(sandbox.bridge_address, 8080), (other.bridge_address, 8080)])
    assert reach == {f"{sandbox.bridge_address}:8080": "closed",
                     f"{other.bridge_address}:8080": "open"}
    status, out, _ = node_ssh(sandbox.nodes[1].address,
                              f"curl -sf --max-time 10 {sandbox.packages_url}/probe.txt")
    assert status == 0 and out == "own package server\n"


def test_this_machine_still_reaches_the_nodes(sandbox: Sandbox, node_ssh: SSHRun) -> None:
    """Replies to connections this machine opened pass: SSH, and a node's own service."""
    for node in sandbox.nodes:
        status, out, _ = node_ssh(node.address, "hostname")
        assert status == 0 and out.strip() == node.name
    address = sandbox.nodes[0].address
    node_ssh(address, "nohup timeout 60 python3 -m http.server 8731 >/dev/null 2>&1 &")
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection((address, 8731), timeout=2):
                break
        except OSError:
            assert time.monotonic() < deadline, "the node's web server never answered"
            time.sleep(0.3)


def rule_problems(sandbox: Sandbox) -> list[str]:
    return [p for s in list_sandboxes() if s.ident == sandbox.ident for p in s.problems]


def test_list_names_missing_and_stray_rules_and_up_down_repair_them(
        sandbox: Sandbox, tmp_path: Path) -> None:
    assert rule_problems(sandbox) == []
    tag = Names(sandbox.ident).rule_tag
    listing = subprocess.run(["iptables", "-w", "-S", "INPUT"], capture_output=True,
                             text=True, check=True).stdout
    ours = [line for line in listing.splitlines() if tag in line]
    assert ours and ours[-1].endswith("-j DROP")
    subprocess.run(["iptables", "-w", "-D", "INPUT", *shlex.split(ours[-1])[2:]], check=True)
    problems = rule_problems(sandbox)
    assert problems and any("INPUT" in p for p in problems), problems
    up(sandbox.directory, len(sandbox.nodes), "native", Emitter())
    assert rule_problems(sandbox) == []

    # A crashed sandbox's rules and apt proxy, with neither a registry entry nor a bridge left.
    ghost = Names("0ddba1")
    for repair in (lambda: down(tmp_path / "never-made", Emitter()),
                   lambda: up(sandbox.directory, len(sandbox.nodes), "native", Emitter())):
        network.ensure_rules(ghost, Plan(250))
        hostservices.ensure_apt_proxy(ghost.ident, "127.0.0.1", tmp_path / "ghost-proxy.log")
        stray = [s for s in list_sandboxes() if s.ident == ghost.ident]
        assert stray and stray[0].state == "stale", stray
        assert sorted(stray[0].problems) == ["apt proxy without a registered sandbox",
                                             "rules without a registered sandbox"]
        repair()
        assert not [s for s in list_sandboxes() if s.ident == ghost.ident]
        left = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True,
                              check=True).stdout
        assert ghost.rule_tag not in left
        assert not hostservices.apt_proxy_pids(ghost.ident)
