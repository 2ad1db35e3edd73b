"""The fleet file loader: one case per kind of mistake, each with its line, column and advice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pifleet.errors import BadInput
from pifleet.fleet import FleetFileError, load_fleet
from pifleet.fleet.load import parse_fleet

GOOD = """\
name: lab
nodes:
  - name: laperouse
    address: 192.168.1.10
    role: control-plane
  - name: black-pearl
    address: 192.168.1.11
"""

# (id, fleet file text, line, column, words the message must contain)
CASES = [
    ("yaml-syntax", "name: lab\nnodes: [\n  {name: a\n", 4, 1, ["YAML syntax"]),
    ("yaml-tab", "name: lab\nnodes:\n\t- name: a\n", 3, 1, ["YAML syntax", "spaces", "tabs"]),
    ("yaml-two-documents", GOOD + "---\nname: other\n", 8, 1, ["YAML syntax"]),
    ("empty-file", "", 1, 1, ["empty", "pifleet init"]),
    ("not-a-map", "- laperouse\n", 1, 1, ["map of keys"]),
    ("duplicate-yaml-key", GOOD + "name: again\n", 8, 1,
     ["duplicate key `name`", "line 1"]),
    ("unknown-top-key", GOOD + "sshh: {user: pi}\n", 8, 1,
     ["unknown key `sshh`", "did you mean `ssh`"]),
    ("unknown-node-key", GOOD.replace("    role: control-plane",
                                      "    role: control-plane\n    rol: worker"), 6, 5,
     ["unknown key `rol`", "nodes[0]", "did you mean `role`"]),
    ("unknown-key-no-match", GOOD + "kubernetes:\n  flavour: vanilla\n", 9, 3,
     ["unknown key `flavour`", "`pod_cidr`", "`version`"]),
    ("missing-address", "name: lab\nnodes:\n  - name: laperouse\n    role: control-plane\n",
     3, 5, ["`address` is missing", "nodes[0]", "address: 192.168.1.10"]),
    ("missing-name", "nodes:\n  - {name: laperouse, address: 10.0.0.1, role: control-plane}\n",
     1, 1, ["`name` is missing", "name: laperouse"]),
    ("nodes-not-a-list", "name: lab\nnodes: {name: laperouse}\n", 2, 8,
     ["`nodes`", "should be a list"]),
    ("port-not-a-number", GOOD + "ssh:\n  port: twenty-two\n", 9, 9,
     ["`ssh.port`", "whole number", "port: 22"]),
    ("port-out-of-range", GOOD + "ssh:\n  port: 70000\n", 9, 9, ["`ssh.port`", "65535"]),
    ("role-master", GOOD.replace("role: control-plane", "role: master"), 5, 11,
     ["`nodes[0].role`", "old name", "use `role: control-plane`"]),
    ("role-unknown", GOOD.replace("role: control-plane", "role: chief"), 5, 11,
     ["`nodes[0].role`", "`chief` is not a choice", "`control-plane`, `worker`"]),
    ("name-a-list", GOOD.replace("name: black-pearl", "name: [black, pearl]"), 6, 11,
     ["`nodes[1].name`", "should be text, not a list"]),
    ("duplicate-node-name", GOOD.replace("name: black-pearl", "name: laperouse"), 6, 11,
     ["name `laperouse` is already used by nodes[0]", "own name", "black-pearl"]),
    ("duplicate-address", GOOD.replace("192.168.1.11", "192.168.1.10"), 7, 14,
     ["address `192.168.1.10` is already used by nodes[0]", "own address"]),
    ("duplicate-address-spelled-differently",
     GOOD.replace("192.168.1.10", "'fe80::1'").replace("192.168.1.11", "'fe80:0::1'"), 7, 14,
     ["already used by nodes[0]"]),
    ("duplicate-dns-name", GOOD.replace("192.168.1.10", "laperouse.local")
     .replace("192.168.1.11", "LAPEROUSE.local."), 7, 14, ["already used by nodes[0]"]),
    ("hostname-upper-case", GOOD.replace("name: laperouse", "name: Laperouse"), 3, 11,
     ["`Laperouse` is not a valid hostname", "e.g. `laperouse`"]),
    ("hostname-underscore", GOOD.replace("name: black-pearl", "name: black_pearl"), 6, 11,
     ["not a valid hostname", "e.g. `black-pearl`"]),
    ("hostname-leading-hyphen", GOOD.replace("name: black-pearl", "name: -pearl"), 6, 11,
     ["not a valid hostname", "e.g. `pearl`"]),
    ("hostname-too-long", GOOD.replace("name: black-pearl", "name: " + "b" * 64), 6, 11,
     ["not a valid hostname", "at most 63"]),
    ("address-bad-ipv4", GOOD.replace("192.168.1.11", "192.168.1.300"), 7, 14,
     ["not a valid IPv4 address", "192.168.1.10"]),
    ("address-bad-dns-name", GOOD.replace("192.168.1.11", "black_pearl.local"), 7, 14,
     ["neither an IP address nor a DNS name", "laperouse.local"]),
    ("no-control-plane", GOOD.replace("    role: control-plane\n", ""), 2, 1,
     ["no node has `role: control-plane`", "exactly one", "laperouse"]),
    ("two-control-planes", GOOD + "    role: control-plane\n", 8, 11,
     ["black-pearl is a second control-plane", "laperouse", "role: worker"]),
    ("no-nodes", "name: lab\nnodes: []\n", 2, 8, ["`nodes` is empty", "at least one"]),
    ("pod-cidr-overlaps-service-cidr", GOOD + "kubernetes:\n  pod_cidr: 10.96.0.0/16\n", 9, 13,
     ["pod network 10.96.0.0/16 overlaps the service network 10.96.0.0/12",
      "pod_cidr: 10.244.0.0/16"]),
    ("service-cidr-overlaps-default-pod-cidr", GOOD + "kubernetes:\n  service_cidr: 10.0.0.0/8\n",
     9, 17, ["overlaps the service network 10.0.0.0/8", "pod_cidr: 172.20.0.0/16"]),
    ("node-inside-pod-cidr", GOOD.replace("192.168.1.11", "10.244.3.7"), 7, 14,
     ["address 10.244.3.7 is inside the pod network", "pod_cidr: 10.42.0.0/16"]),
    ("node-inside-service-cidr", GOOD.replace("192.168.1.11", "10.100.0.1"), 7, 14,
     ["inside the service network", "service_cidr: 10.112.0.0/12"]),
    ("pod-cidr-malformed", GOOD + "kubernetes:\n  pod_cidr: 10.244.0.0/33\n", 9, 13,
     ["`kubernetes.pod_cidr`", "pod_cidr: 10.244.0.0/16"]),
    ("version-with-v", GOOD + "kubernetes:\n  version: v1.34\n", 9, 12,
     ["`v1.34` is not a Kubernetes version", '`"1.34"`', "1.34.2"]),
    ("version-major-only", GOOD + "kubernetes:\n  version: 1\n", 9, 12,
     ["`1` is not a Kubernetes version"]),
    ("version-four-parts", GOOD + "kubernetes:\n  version: 1.34.2.1\n", 9, 12,
     ["`1.34.2.1` is not a Kubernetes version"]),
    ("version-word", GOOD + "kubernetes:\n  version: latest\n", 9, 12,
     ["`latest` is not a Kubernetes version"]),
    ("repository-without-minor",
     GOOD + "kubernetes:\n  package_repository: https://mirror.example/k8s/deb/\n", 9, 23,
     ["`kubernetes.package_repository`", "has no `{minor}`"]),
    ("repository-other-placeholder",
     GOOD + "kubernetes:\n  package_repository: https://x.example/v{version}/deb/\n", 9, 23,
     ["uses {version}", "only placeholder is `{minor}`"]),
    ("key-url-without-minor",
     GOOD + "kubernetes:\n  package_key_url: https://x.example/Release.key\n", 9, 20,
     ["`kubernetes.package_key_url`", "has no `{minor}`"]),
    ("key-url-extra-placeholder",
     GOOD + "kubernetes:\n  package_key_url: https://x.example/v{minor}/{arch}/Release.key\n",
     9, 20, ["uses {arch}"]),
    ("repository-unbalanced-brace",
     GOOD + "kubernetes:\n  package_repository: 'https://x.example/v{minor/deb/'\n", 9, 23,
     ["unbalanced braces"]),
    ("token-ttl-not-a-duration", GOOD + "kubernetes:\n  token_ttl: forever\n", 9, 14,
     ["`forever` is not a duration", "1h"]),
    ("dashboard-unknown", GOOD + "kubernetes:\n  dashboard: grafana\n", 9, 14,
     ["`kubernetes.dashboard`", "`grafana` is not a choice", "`headlamp`"]),
    ("fleet-name-with-slash", GOOD.replace("name: lab", "name: a/b"), 1, 7,
     ["`a/b` cannot name a fleet"]),
    ("non-scalar-key", GOOD + "? [a, b]\n: c\n", 8, 3, ["plain word"]),
]


@pytest.mark.parametrize(("text", "line", "column", "words"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_mistake_is_reported_where_it_is(tmp_path: Path, text: str, line: int, column: int,
                                             words: list[str]) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    with pytest.raises(FleetFileError) as caught:
        load_fleet(path)
    error = caught.value
    assert isinstance(error, BadInput) and error.exit_code == 2
    assert error.path == path
    hits = [p for p in error.problems if all(w in p.message for w in words)]
    assert hits, f"no problem mentions {words}: {[p.message for p in error.problems]}"
    assert (hits[0].line, hits[0].column) == (line, column)
    assert f"{path}:{line}:{column}: " in str(error)


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(FleetFileError) as caught:
        load_fleet(tmp_path / "fleet.yaml")
    assert caught.value.line is None
    assert "no such fleet file" in str(caught.value) and "pifleet init" in str(caught.value)


def test_unreadable_file_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").mkdir()
    with pytest.raises(FleetFileError, match="cannot read the fleet file"):
        load_fleet(tmp_path / "fleet.yaml")


def test_every_problem_is_reported_one_line_each_in_file_order(tmp_path: Path) -> None:
    text = GOOD.replace("name: laperouse", "name: Laperouse").replace(
        "192.168.1.11", "192.168.1.10") + "kubernetes:\n  version: latest\n  dashbord: none\n"
    with pytest.raises(FleetFileError) as caught:
        parse_fleet(text, tmp_path / "fleet.yaml")
    problems = caught.value.problems
    assert [(p.line, p.column) for p in problems] == [(3, 11), (7, 14), (9, 12), (10, 3)]
    lines = str(caught.value).splitlines()
    assert len(lines) == 4
    assert all(line.startswith(f"{tmp_path / 'fleet.yaml'}:") for line in lines)
    assert (caught.value.line, caught.value.column) == (3, 11)


def test_a_good_file_loads_with_its_defaults_and_path(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(GOOD)
    fleet = load_fleet(path)
    assert fleet.name == "lab" and fleet.path == path and fleet.base_dir == tmp_path
    assert [n.name for n in fleet.nodes] == ["laperouse", "black-pearl"]
    assert fleet.control_plane.name == "laperouse"
    assert fleet.nodes[1].role == "worker"
    assert fleet.ssh.user == "pirate" and fleet.ssh.port == 22
    assert fleet.resolve(fleet.ssh.private_key) == tmp_path / ".pifleet" / "id_ed25519"
    assert fleet.kubernetes.minor == "1.34"
    assert fleet.kubernetes.repository_url == "https://pkgs.k8s.io/core:/stable:/v1.34/deb/"


def test_unquoted_values_keep_what_was_written_where_text_is_expected() -> None:
    # YAML would read 1.30 as the number 1.3 and `no` as false.
    text = (GOOD.replace("name: lab", "name: no")
            + "kubernetes:\n  version: 1.30\n  token_ttl: 0\n"
            + "ssh:\n  port: 2222\n  password: 0123\n  user: 2024-01-01\n")
    fleet = parse_fleet(text)
    assert fleet.name == "no"
    assert fleet.ssh.password == "0123" and fleet.ssh.user == "2024-01-01"
    assert fleet.kubernetes.version == "1.30" and fleet.kubernetes.minor == "1.30"
    assert fleet.kubernetes.token_ttl == "0"
    assert fleet.ssh.port == 2222


def test_addresses_may_be_ipv6_or_dns_names_and_merge_keys_work() -> None:
    text = """\
name: lab
defaults: &worker {role: worker}
nodes:
  - {name: laperouse, address: laperouse.local, role: control-plane}
  - {<<: *worker, name: fregate, address: "fd00::2"}
"""
    with pytest.raises(FleetFileError, match="unknown key `defaults`"):
        parse_fleet(text)
    fleet = parse_fleet(text.replace("defaults: &worker {role: worker}\n", "").replace(
        "*worker", "{role: worker}"))
    assert [n.address for n in fleet.nodes] == ["laperouse.local", "fd00::2"]


def test_node_lookup_and_selection() -> None:
    fleet = parse_fleet(GOOD + "  - {name: fregate, address: 192.168.1.12}\n")
    assert [n.name for n in fleet.select(["fregate", "laperouse"])] == ["laperouse", "fregate"]
    assert len(fleet.select(None)) == 3
    with pytest.raises(BadInput, match="no node named 'astrolabe'"):
        fleet.node("astrolabe")


def test_secrets_are_not_echoed_in_errors() -> None:
    with pytest.raises(FleetFileError) as caught:
        parse_fleet(GOOD + "ssh:\n  password: {hunter2: hunter2}\n")
    assert "`ssh.password`" in str(caught.value) and "hunter2" not in str(caught.value)


def test_a_bad_fleet_file_stops_a_command_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(GOOD.replace("name: black-pearl", "name: Black")
                                         + "kubernetes: {version: latest}\n")
    env = {k: v for k, v in os.environ.items() if k != "PIFLEET_FLEET"}
    done = subprocess.run([sys.executable, "-m", "pifleet", "run", "--", "true"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("error: fleet.yaml:6:11: `nodes[1].name`")
    assert lines[1].startswith("fleet.yaml:8:23: `kubernetes.version`")
