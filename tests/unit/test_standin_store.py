"""The API server stand-in's store: selectors, versions, conflicts, watch, persistence."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kube_standin import resources
from kube_standin.store import ApiError, Store, field_match, label_match

CM = resources.must("", "v1", "configmaps")

LABEL_CASES = [
    ("", {}, True), ("a=b", {"a": "b"}, True), ("a=b", {"a": "c"}, False),
    ("a!=b", {"a": "c"}, True), ("a", {"a": ""}, True), ("!a", {"a": ""}, False),
    ("a in (x,y),b", {"a": "y", "b": "1"}, True), ("a notin (x,y)", {"a": "x"}, False),
    ("a==b,c=d", {"a": "b", "c": "e"}, False),
]


@pytest.mark.parametrize(("selector", "labels", "expected"), LABEL_CASES)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert label_match(selector, labels) is expected


def test_field_selectors() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}}
    assert field_match("spec.nodeName=n1", pod)
    assert not field_match("spec.nodeName=n2", pod)
    assert field_match("spec.nodeName!=n2,metadata.name=p", pod)


def _cm(name: str, **data: str) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "default"}, "data": dict(data)}


def test_versions_conflicts_and_persistence(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    store = Store(state)
    created = store.create(CM, _cm("a", x="1"))
    assert created["metadata"]["resourceVersion"] == "1"
    with pytest.raises(ApiError) as exc:
        store.create(CM, _cm("a"))
    assert (exc.value.code, exc.value.reason) == (409, "AlreadyExists")
    updated = store.update(CM, dict(created, data={"x": "2"}))
    assert updated["metadata"]["resourceVersion"] == "2"
    with pytest.raises(ApiError) as exc:
        store.update(CM, dict(created, data={"x": "3"}))  # carries the stale version 1
    assert exc.value.code == 409 and "modified" in exc.value.message
    same = store.update(CM, updated)
    assert same["metadata"]["resourceVersion"] == "2"  # no-op writes keep the version
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    again = Store(state)
    assert again.get(CM, "default", "a")["data"] == {"x": "2"}
    assert again.rv == 2
    with pytest.raises(ApiError) as exc:
        again.get(CM, "default", "missing")
    assert exc.value.status()["reason"] == "NotFound"
    assert exc.value.status()["message"] == 'configmaps "missing" not found'


def test_watch_sends_later_events_in_order(tmp_path: Path) -> None:
    store = Store(None)
    store.create(CM, _cm("before"))
    start = store.rv
    seen: list[tuple[str, str]] = []

    def consume() -> None:
        for kind, obj in store.watch(CM, start, "default", "", "", timeout=3):
            if kind:
                seen.append((kind, obj["metadata"]["name"]))
            if len(seen) == 3:
                return

    thread = threading.Thread(target=consume)
    thread.start()
    live = store.create(CM, _cm("w1"))
    store.update(CM, dict(live, data={"k": "v"}))
    store.delete(CM, "default", "w1")
    thread.join(5)
    assert seen == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]


def test_watch_from_a_forgotten_version_is_expired() -> None:
    store = Store(None)
    store.HISTORY = 2
    from collections import deque

    store.history = deque(maxlen=2)
    for i in range(4):
        store.create(CM, _cm(f"c{i}"))
    with pytest.raises(ApiError) as exc:
        next(iter(store.watch(CM, 0, "", "", "", timeout=1)))
    assert exc.value.code == 410
