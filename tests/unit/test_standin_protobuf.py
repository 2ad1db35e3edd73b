"""The protobuf wire decoding of kubectl's request bodies."""

from __future__ import annotations

from pathlib import Path

import pytest

from kube_standin import protobuf, resources
from kube_standin.protobuf_types import KIND_MESSAGES
from manifests import FLANNEL_INSTALL_CONF
from standin_cluster import running_cluster, start_kubelet
from ui_manifests import DASHBOARD_FULL, HEADLAMP_FULL


def varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version.encode()) + field(2, kind.encode())
    return protobuf.MAGIC + field(1, type_meta) + field(2, raw) + field(3, b"") + field(4, b"")


def test_token_request_with_audiences_and_expiry() -> None:
    meta = field(1, b"") + field(7, 0) + field(11, field(1, b"a") + field(2, b"b"))
    spec = field(1, b"one") + field(1, b"two") + field(4, 1200)
    body = envelope("authentication.k8s.io/v1", "TokenRequest", field(1, meta) + field(2, spec))
    assert protobuf.decode(body, ("TokenRequest",)) == {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "metadata": {"labels": {"a": "b"}},
        "spec": {"audiences": ["one", "two"], "expirationSeconds": 1200}}


def test_secret_bytes_become_base64_and_empty_strings_vanish() -> None:
    meta = field(1, b"s") + field(2, b"") + field(3, b"ns")
    entry = field(1, b"k") + field(2, b"\x00\xff")
    body = envelope("v1", "Secret", field(1, meta) + field(2, entry) + field(3, b"Opaque"))
    assert protobuf.decode(body, ("Secret",)) == {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"},
        "data": {"k": "AP8="}, "type": "Opaque"}


def test_unknown_fields_kinds_and_garbage_are_refused() -> None:
    body = envelope("apps/v1", "Deployment", field(1, field(1, b"d")) + field(99, b"x"))
    with pytest.raises(protobuf.Unsupported, match="Deployment: field 99"):
        protobuf.decode(body, ("Deployment",))
    with pytest.raises(protobuf.Unsupported):
        protobuf.decode(envelope("apps/v1", "Deployment", b""), ("Secret",))
    with pytest.raises(protobuf.Unsupported):
        protobuf.decode(envelope("example.com/v1", "Widget", b""))
    with pytest.raises(protobuf.Unsupported):
        protobuf.decode(b"{}", ("Secret",))
    with pytest.raises(protobuf.Unsupported):
        protobuf.decode(protobuf.MAGIC + b"\x0a\xff", ("Secret",))


def _without_nulls(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def test_every_served_object_survives_a_protobuf_round_trip(tmp_path: Path) -> None:
    """What the server stores for each kind encodes and decodes to the same JSON: no field
    outside the tables, and no zero written where the real API would leave the field out."""
    with running_cluster(tmp_path / "server") as c:
        kubelet = start_kubelet(c, "pi-1", tmp_path / "nodes")
        try:
            c.kubectl("apply", "-f", str(_write(tmp_path, "ui.yaml",
                                                DASHBOARD_FULL + "---\n" + HEADLAMP_FULL)))
            c.kubectl("apply", "-f", str(_write(tmp_path, "flannel.yaml", FLANNEL_INSTALL_CONF)))
            c.kubectl("create", "job", "once", "--image=busybox:1.36")
            c.kubectl("-n", "kubernetes-dashboard", "rollout", "status",
                      "deployment/kubernetes-dashboard", "--timeout=60s")
            c.kubectl("wait", "--for=condition=complete", "job/once", "--timeout=60s")
            c.kubectl("create", "token", "kubernetes-dashboard", "-n", "kubernetes-dashboard")
            checked = set()
            for kind in resources.KINDS:
                if not kind.stored or (kind.api_version, kind.kind) not in KIND_MESSAGES:
                    continue
                prefix = f"/apis/{kind.group}/{kind.version}" if kind.group else "/api/v1"
                status, listed = c.request("GET", f"{prefix}/{kind.plural}")
                assert status == 200
                for obj in listed["items"]:
                    wire = protobuf.encode(obj)
                    assert _without_nulls(protobuf.decode(wire)) == _without_nulls(obj), \
                        f"{kind.kind} {obj['metadata']['name']}"
                    checked.add(kind.kind)
            assert {"Pod", "Deployment", "ReplicaSet", "DaemonSet", "ControllerRevision",
                    "Job", "Service", "Endpoints", "EndpointSlice", "Event", "Node", "Secret",
                    "ConfigMap", "ServiceAccount", "ClusterRole", "RoleBinding",
                    "Namespace"} <= checked
        finally:
            kubelet.stop()


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path
