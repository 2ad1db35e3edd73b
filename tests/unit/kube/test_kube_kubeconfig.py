"""kubeconfig: admin.conf renamed structurally and merged into the user's files as kubectl
would, every other entry kept; checked with the real kubectl against the API stand-in."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from kube_cluster import NODE_ADDRESS, StandinCluster, needs_kubectl
from pifleet.errors import BadInput, Failed
from pifleet.kube import kubeconfig as kc
from pifleet.kube.kubeconfig import completion_hint, fleet_kubeconfig, merge_kubeconfig

# Shapes of kubeconfigs people already have (written here, like the tools that make them).
WITH_EXTENSIONS = """\
# written by hand, then by minikube
apiVersion: v1
kind: Config
preferences:
  colors: true
clusters:
- name: minikube
  cluster:
    certificate-authority: /home/u/.minikube/ca.crt
    server: https://192.0.2.49:8443
    extensions:
    - name: cluster_info
      extension:
        last-update: Mon, 02 Nov 2026 10:00:00 UTC
        provider: minikube.sigs.k8s.io
        version: v1.34.0
- name: kind-lab
  cluster:
    server: https://127.0.0.1:39999
    insecure-skip-tls-verify: true
    proxy-url: socks5://localhost:1080
contexts:
- name: minikube
  context:
    cluster: minikube
    user: minikube
    namespace: default
    extensions:
    - name: context_info
      extension: {last-update: "2026-11-02", provider: minikube.sigs.k8s.io}
- name: kind-lab
  context: {cluster: kind-lab, user: kind-lab, namespace: labs}
current-context: minikube
users:
- name: minikube
  user:
    client-certificate: /home/u/.minikube/profiles/minikube/client.crt
    client-key: /home/u/.minikube/profiles/minikube/client.key
- name: kind-lab
  user: {token: not-a-real-token}
extensions:
- name: some-tool
  extension: {keep: [1, 2, 3], when: 2026-11-02}
x-unknown-key: {kept: yes}
"""

WITH_EXEC = """\
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: Y2VydA==
    server: https://ABCDEF.gr7.eu-west-1.eks.example
  name: arn:aws:eks:eu-west-1:123456789012:cluster/prod
contexts:
- context:
    cluster: arn:aws:eks:eu-west-1:123456789012:cluster/prod
    user: arn:aws:eks:eu-west-1:123456789012:cluster/prod
  name: prod
- context: {cluster: arn:aws:eks:eu-west-1:123456789012:cluster/prod, user: oidc}
  name: prod-oidc
current-context: ""
preferences: {}
users:
- name: arn:aws:eks:eu-west-1:123456789012:cluster/prod
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [--region, eu-west-1, eks, get-token, --cluster-name, prod]
      env:
      - {name: AWS_PROFILE, value: prod}
      interactiveMode: IfAvailable
      provideClusterInfo: false
- name: oidc
  user:
    auth-provider:
      name: oidc
      config: {client-id: kubernetes, idp-issuer-url: "https://idp.example"}
"""


def fleet(cluster: StandinCluster, name: str = "team1", address: str = "127.0.0.1"
          ) -> kc.FleetKubeconfig:
    return fleet_kubeconfig(cluster.admin_conf, name=name, address=address,
                            source="admin.conf from laperouse")


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def kubectl_view(cluster: StandinCluster, kubeconfig: str) -> dict[str, Any]:
    """The merged config as kubectl itself reads it (KUBECONFIG may be a list)."""
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    out = cluster.kubectl("config", "view", "--raw", "-o", "json", env=env).stdout
    return json.loads(out)


def without(view: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """kubectl's view with pifleet's entries (section -> name) left out."""
    out = dict(view)
    for section, name in names.items():
        out[section] = [e for e in view.get(section) or [] if e["name"] != name]
    return out


OURS = {"clusters": "team1", "users": "team1-admin", "contexts": "team1"}


# ---- renaming ----

def test_admin_conf_is_renamed_structurally_and_pointed_at_the_fleet(
        cluster: StandinCluster) -> None:
    # A field that merely contains the old names must survive: no blind string replace.
    doc = yaml.safe_load(cluster.admin_conf)
    doc["clusters"][0]["cluster"]["tls-server-name"] = "kubernetes"
    f = fleet_kubeconfig(yaml.safe_dump(doc), name="team1", address="127.0.0.1")
    assert f.cluster["name"] == "team1" and f.user["name"] == "team1-admin"
    assert f.context == {"name": "team1", "context": {
        "cluster": "team1", "user": "team1-admin", "extensions": [kc.MARKER]}}
    assert f.cluster["cluster"]["server"] == f"https://127.0.0.1:{cluster.port}"
    assert f.cluster["cluster"]["tls-server-name"] == "kubernetes"
    old_user = doc["users"][0]["user"]
    for key in ("client-certificate-data", "client-key-data"):
        assert f.user["user"][key] == old_user[key]
    whole = json.dumps(f.document())
    assert "kubernetes-admin" not in whole
    assert f.document()["current-context"] == "team1"


def test_repr_never_shows_credentials(cluster: StandinCluster) -> None:
    f = fleet(cluster)
    key = f.user["user"]["client-key-data"]
    assert key[:40] not in repr(f) and key[:40] not in str(f)
    assert repr(f) == f"FleetKubeconfig(context='team1', server='https://127.0.0.1:{cluster.port}')"


@pytest.mark.parametrize(("address", "server"), [
    ("192.0.2.31", "https://192.0.2.31:{port}"),
    ("fd00::31", "https://[fd00::31]:{port}"),
    ("laperouse.local", "https://laperouse.local:{port}"),
])
def test_server_keeps_its_port_and_takes_the_fleet_address(
        cluster: StandinCluster, address: str, server: str) -> None:
    assert fleet(cluster, address=address).server == server.format(port=cluster.port)


BAD_ADMIN_CONF = [
    ("clusters: [", "line"),
    ("- a\n- b\n", "not a kubeconfig"),
    ("kind: Pod\napiVersion: v1\n", "kind: Pod"),
    ("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
     "no current context"),
    ("current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n",
     "names a cluster"),
    ("current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
     "clusters: [{name: c, cluster: {server: 'https://x:6443'}}]\n"
     "users: [{name: u, user: {}}]\n", "no credentials"),
    ("current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
     "clusters: [{name: c, cluster: {server: 'http://x:8080'}}]\n"
     "users: [{name: u, user: {token: t}}]\n", "not an https:// URL"),
    ("clusters: {name: c}\n", "clusters is not a list"),
    ("clusters: [{cluster: {}}]\n", "clusters[0] has no name"),
]


@pytest.mark.parametrize(("text", "problem"), BAD_ADMIN_CONF)
def test_a_file_that_is_not_admin_conf_is_bad_input_naming_it(text: str, problem: str) -> None:
    with pytest.raises(BadInput) as err:
        fleet_kubeconfig(text, name="team1", address="127.0.0.1",
                         source="admin.conf from laperouse")
    assert "admin.conf from laperouse" in str(err.value) and problem in str(err.value)


@pytest.mark.parametrize("name", ["", "team 1", "-x", "a/b", "x" * 300])
def test_context_names_are_checked(cluster: StandinCluster, name: str) -> None:
    with pytest.raises(BadInput, match="context name"):
        fleet(cluster, name=name)


# ---- merging into one file ----

@needs_kubectl
def test_new_kubeconfig_is_written_0600_current_and_works_with_kubectl(
        cluster: StandinCluster, tmp_path: Path) -> None:
    result = merge_kubeconfig(fleet(cluster), home=tmp_path, environ={})
    config = tmp_path / ".kube" / "config"
    assert result.changed and result.made_current and result.current_context == "team1"
    assert [c.path for c in result.written] == [config] and result.written[0].backup is None
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    out = cluster.kubectl("--kubeconfig", str(config), "get", "nodes").stdout
    rows = [line.split()[:3] for line in out.splitlines()]
    assert rows == [["NAME", "STATUS", "ROLES"], ["black-pearl", "Ready", "<none>"],
                    ["laperouse", "Ready", "control-plane"]]
    assert cluster.kubectl("--kubeconfig", str(config), "config", "current-context"
                           ).stdout.strip() == "team1"
    assert not list(config.parent.glob("*.lock")) and not list(config.parent.glob("*.bak"))


@needs_kubectl
@pytest.mark.parametrize("shape", [WITH_EXTENSIONS, WITH_EXEC], ids=["extensions", "exec"])
def test_every_other_entry_is_kept_in_meaning(cluster: StandinCluster, tmp_path: Path,
                                              shape: str) -> None:
    config = tmp_path / "config"
    config.write_text(shape)
    before = kubectl_view(cluster, str(config))
    result = merge_kubeconfig(fleet(cluster), output=config)
    after = kubectl_view(cluster, str(config))
    had_current = bool(yaml.safe_load(shape).get("current-context"))
    expected = dict(before, **({} if had_current else {"current-context": "team1"}))
    assert without(after, OURS) == expected
    assert result.made_current is (not had_current)
    # Unknown keys kubectl does not show are kept too (read as kubectl reads YAML: a
    # timestamp-like value is the string it was written as).
    doc, old = kc.parse(config.read_text(), "new"), kc.parse(shape, "old")
    for key in set(old) - {"clusters", "users", "contexts", "current-context"}:
        assert doc[key] == old[key]
    assert {e["name"] for e in doc["contexts"]} == {e["name"] for e in old["contexts"]} | {
        "team1"}
    # The backup is the old file, byte for byte, and private.
    assert len(result.written) == 1 and result.written[0].backup is not None
    backup = result.written[0].backup
    assert backup.read_text() == shape and stat.S_IMODE(backup.stat().st_mode) == 0o600
    env_ok = cluster.kubectl("--kubeconfig", str(config), "--context", "team1", "get", "nodes")
    assert "laperouse" in env_ok.stdout


def test_rerun_is_unchanged_and_writes_nothing(cluster: StandinCluster, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(WITH_EXTENSIONS)
    merge_kubeconfig(fleet(cluster), output=config)
    first = config.stat()
    again = merge_kubeconfig(fleet(cluster), output=config)
    assert not again.changed and again.written == () and not again.made_current
    assert config.stat().st_ino == first.st_ino and config.stat().st_mtime_ns == \
        first.st_mtime_ns
    assert len(list(tmp_path.glob("config.pifleet-*.bak"))) == 1


def test_a_change_replaces_our_entries_keeps_the_namespace_and_backs_up_once(
        cluster: StandinCluster, tmp_path: Path) -> None:
    config = tmp_path / "config"
    merge_kubeconfig(fleet(cluster), output=config)
    doc = load(config)
    doc["contexts"][0]["context"]["namespace"] = "lab3"  # kubectl config set-context ...
    config.write_text(yaml.safe_dump(doc))
    moved = merge_kubeconfig(fleet(cluster, address="192.0.2.77"), output=config)
    assert moved.changed and len(moved.written) == 1
    doc = load(config)
    assert [c["name"] for c in doc["clusters"]] == ["team1"]
    assert doc["clusters"][0]["cluster"]["server"] == f"https://192.0.2.77:{cluster.port}"
    assert doc["contexts"][0]["context"]["namespace"] == "lab3"
    assert len(doc["users"]) == 1


def test_current_context_changes_only_when_asked(cluster: StandinCluster,
                                                 tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(WITH_EXTENSIONS)
    merge_kubeconfig(fleet(cluster), output=config)
    assert load(config)["current-context"] == "minikube"
    asked = merge_kubeconfig(fleet(cluster), output=config, make_current=True)
    assert asked.changed and asked.made_current and load(config)["current-context"] == "team1"
    assert not merge_kubeconfig(fleet(cluster), output=config, make_current=True).changed


def test_an_entry_pifleet_did_not_write_is_never_replaced(cluster: StandinCluster,
                                                          tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(WITH_EXTENSIONS)
    before = config.read_bytes()
    with pytest.raises(BadInput, match=r"cluster named 'minikube' is already there"):
        merge_kubeconfig(fleet(cluster, name="minikube"), output=config)
    assert config.read_bytes() == before and not list(tmp_path.glob("*.bak"))
    assert not list(tmp_path.glob("*.lock"))


@pytest.mark.parametrize(("text", "problem"), [
    ("apiVersion: v1\nclusters: [\n", "line 3"),
    ("kind: Deployment\n", "kind: Deployment"),
    ("just some words\n", "not a mapping"),
    ("users:\n- user: {token: x}\n", "users[0] has no name"),
])
def test_a_target_that_is_not_a_kubeconfig_is_refused_unchanged(
        cluster: StandinCluster, tmp_path: Path, text: str, problem: str) -> None:
    config = tmp_path / "config"
    config.write_text(text)
    with pytest.raises(BadInput) as err:
        merge_kubeconfig(fleet(cluster), output=config)
    assert str(config) in str(err.value) and problem in str(err.value)
    assert config.read_text() == text and sorted(p.name for p in tmp_path.iterdir()) == [
        "config"]


def test_binary_file_and_directory_are_refused(cluster: StandinCluster, tmp_path: Path) -> None:
    binary = tmp_path / "binary"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(BadInput, match="not UTF-8"):
        merge_kubeconfig(fleet(cluster), output=binary)
    with pytest.raises(BadInput, match="is a directory"):
        merge_kubeconfig(fleet(cluster), output=tmp_path)


def test_a_symlinked_kubeconfig_stays_a_symlink(cluster: StandinCluster,
                                                tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "kubeconfig"
    real.parent.mkdir()
    real.write_text(WITH_EXTENSIONS)
    (tmp_path / ".kube").mkdir()
    link = tmp_path / ".kube" / "config"
    link.symlink_to(real)
    result = merge_kubeconfig(fleet(cluster), home=tmp_path, environ={})
    assert link.is_symlink() and result.written[0].path == link
    assert "team1" in {c["name"] for c in load(real)["contexts"]}
    assert result.written[0].backup is not None and result.written[0].backup.parent == \
        real.parent


def test_a_held_kubectl_lock_stops_the_merge(cluster: StandinCluster, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kc, "_LOCK_WAIT", 0.3)
    config = tmp_path / "config"
    config.write_text(WITH_EXEC)
    (tmp_path / "config.lock").write_text("")
    with pytest.raises(Failed, match=r"config\.lock exists"):
        merge_kubeconfig(fleet(cluster), output=config)
    assert config.read_text() == WITH_EXEC
    assert (tmp_path / "config.lock").exists()  # someone else's: left alone


@needs_kubectl
def test_kubectl_rewriting_the_file_keeps_our_marker(cluster: StandinCluster,
                                                     tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(WITH_EXTENSIONS)
    merge_kubeconfig(fleet(cluster), output=config)
    # kubectl takes its own lock (config.lock) and rewrites the whole file.
    cluster.kubectl("--kubeconfig", str(config), "config", "use-context", "kind-lab")
    assert not merge_kubeconfig(fleet(cluster), output=config).changed
    assert load(config)["current-context"] == "kind-lab"


# ---- $KUBECONFIG lists, as kubectl reads and writes them ----

@needs_kubectl
def test_kubeconfig_list_new_entries_go_to_the_first_existing_file(
        cluster: StandinCluster, tmp_path: Path) -> None:
    missing, first, second = tmp_path / "missing", tmp_path / "a", tmp_path / "b"
    first.write_text(WITH_EXEC)
    second.write_text(WITH_EXTENSIONS)
    env = {"KUBECONFIG": os.pathsep.join(map(str, [missing, first, "", second, first]))}
    before = kubectl_view(cluster, env["KUBECONFIG"])
    result = merge_kubeconfig(fleet(cluster), environ=env, home=tmp_path / "home")
    assert result.files == (missing, first, second)
    assert [c.path for c in result.written] == [first] and not missing.exists()
    assert load(second) == yaml.safe_load(WITH_EXTENSIONS)
    # b sets current-context (a's is empty), so there was one: it stays minikube.
    after = kubectl_view(cluster, env["KUBECONFIG"])
    assert not result.made_current and after["current-context"] == "minikube"
    assert without(after, OURS) == before
    out = cluster.kubectl("--context", "team1", "get", "nodes",
                          env={**os.environ, **env}).stdout
    assert "laperouse" in out


def test_kubeconfig_list_with_no_file_creates_the_last(cluster: StandinCluster,
                                                       tmp_path: Path) -> None:
    first, last = tmp_path / "one" / "a", tmp_path / "two" / "b"
    env = {"KUBECONFIG": f"{first}{os.pathsep}{last}"}
    result = merge_kubeconfig(fleet(cluster), environ=env)
    assert [c.path for c in result.written] == [last] and not first.exists()
    assert load(last)["current-context"] == "team1"


def test_kubeconfig_list_updates_our_entries_where_they_are(cluster: StandinCluster,
                                                            tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    merge_kubeconfig(fleet(cluster), output=second)
    first.write_text(WITH_EXTENSIONS)
    env = {"KUBECONFIG": f"{first}{os.pathsep}{second}"}
    result = merge_kubeconfig(fleet(cluster, address="192.0.2.8"), environ=env)
    assert [c.path for c in result.written] == [second]
    assert load(first) == yaml.safe_load(WITH_EXTENSIONS)
    assert load(second)["clusters"][0]["cluster"]["server"].startswith("https://192.0.2.8:")


def test_output_file_ignores_kubeconfig_variable(cluster: StandinCluster,
                                                 tmp_path: Path) -> None:
    elsewhere = tmp_path / "env-config"
    out = tmp_path / "team1.conf"
    result = merge_kubeconfig(fleet(cluster), output=out,
                              environ={"KUBECONFIG": str(elsewhere)})
    assert result.files == (out,) and out.exists() and not elsewhere.exists()


def test_admin_conf_server_address_is_not_used(cluster: StandinCluster) -> None:
    assert f"https://{NODE_ADDRESS}:" in cluster.admin_conf
    assert NODE_ADDRESS not in json.dumps(fleet(cluster).document())


@pytest.mark.parametrize(("shell", "expected"), [
    ("/bin/bash", "source <(kubectl completion bash)"),
    ("/usr/bin/zsh", "source <(kubectl completion zsh)"),
    ("/usr/bin/fish", "kubectl completion fish"),
    ("/bin/tcsh", "kubectl completion --help"),
])
def test_completion_hint_fits_the_shell(shell: str, expected: str) -> None:
    line = completion_hint(shell)
    assert expected in line and "\n" not in line


def test_an_empty_file_is_an_empty_kubeconfig(cluster: StandinCluster, tmp_path: Path) -> None:
    empty, untouched = tmp_path / "empty", tmp_path / "also-empty"
    empty.write_text("")
    untouched.write_text("# nothing yet\n")
    result = merge_kubeconfig(fleet(cluster), environ={
        "KUBECONFIG": f"{empty}{os.pathsep}{untouched}"})
    assert [c.path for c in result.written] == [empty]
    doc = load(empty)
    assert (doc["apiVersion"], doc["kind"], doc["current-context"]) == ("v1", "Config", "team1")
    assert untouched.read_text() == "# nothing yet\n"
