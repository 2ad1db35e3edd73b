"""Merge patch, strategic merge and server-side apply of the API server stand-in."""

from __future__ import annotations

from typing import Any

import pytest

from kube_standin import patch

MERGE_CASES = [  # RFC 7386 appendix A, a selection
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
]


@pytest.mark.parametrize(("target", "doc", "expected"), MERGE_CASES)
def test_merge_patch(target: Any, doc: Any, expected: Any) -> None:
    assert patch.merge_patch(target, doc) == expected


def _ds(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": list(containers)}}}}


def test_strategic_merge_merges_named_lists() -> None:
    live = _ds({"name": "a", "image": "x:1", "args": ["--p"]}, {"name": "b", "image": "y:1"})
    out = patch.strategic_merge(live, _ds({"name": "a", "image": "x:2"}))
    assert out == _ds({"name": "a", "image": "x:2", "args": ["--p"]},
                      {"name": "b", "image": "y:1"})


def test_strategic_merge_directives() -> None:
    live = _ds({"name": "a"}, {"name": "b"})
    out = patch.strategic_merge(live, _ds({"name": "b", "$patch": "delete"}))
    assert out == _ds({"name": "a"})
    replaced = patch.strategic_merge({"m": {"x": 1, "y": 2}}, {"m": {"$patch": "replace",
                                                                      "z": 3}})
    assert replaced == {"m": {"z": 3}}
    ordered = patch.strategic_merge(live, {"$setElementOrder/x": [1], "spec": {}})
    assert ordered == live


def test_server_side_apply_records_manager_and_prunes_own_fields() -> None:
    first = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
             "data": {"a": "1", "b": "2"}}
    live = patch.apply(None, first, "pifleet")
    live["data"]["other"] = "kept"  # someone else's field
    second = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
              "data": {"a": "3"}}
    out = patch.apply(live, second, "pifleet")
    assert out["data"] == {"a": "3", "other": "kept"}
    managers = [(m["manager"], m["operation"]) for m in out["metadata"]["managedFields"]]
    assert managers == [("pifleet", "Apply")]
    assert out["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:metadata": {"f:name": {}}, "f:data": {"f:a": {}}}


def _deploy(image: str, replicas: int = 1) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "app", "image": image}]}}}}


def test_apply_conflicts_with_other_managers_unless_forced() -> None:
    live = _deploy("app:1")
    patch.record_update(None, live, "kubectl-client-side-apply")
    # Same values: shared ownership, no conflict.
    shared = patch.apply(live, _deploy("app:1"), "pifleet")
    managers = {(m["manager"], m["operation"]) for m in shared["metadata"]["managedFields"]}
    assert managers == {("kubectl-client-side-apply", "Update"), ("pifleet", "Apply")}
    with pytest.raises(patch.ApplyConflict) as exc:
        patch.apply(shared, _deploy("app:2", replicas=3), "pifleet")
    assert sorted(exc.value.conflicts) == [
        ("kubectl-client-side-apply", "apps/v1", ".spec.replicas"),
        ("kubectl-client-side-apply", "apps/v1",
         '.spec.template.spec.containers[name="app"].image')]
    forced = patch.apply(shared, _deploy("app:2", replicas=3), "pifleet", force=True)
    assert forced["spec"]["template"]["spec"]["containers"][0]["image"] == "app:2"
    other = next(m for m in forced["metadata"]["managedFields"]
                 if m["manager"] == "kubectl-client-side-apply")
    assert ("f:spec", "f:replicas") not in patch.leaves(other["fieldsV1"])
    # Now pifleet owns them: a further change by pifleet is no conflict.
    assert patch.apply(forced, _deploy("app:3", replicas=3), "pifleet")["spec"]["replicas"] == 3


def test_updates_take_the_fields_they_change() -> None:
    live = patch.apply(None, _deploy("app:1"), "pifleet")
    edited = patch.strategic_merge(live, {"spec": {"replicas": 5}})
    patch.record_update(live, edited, "kubectl-edit")
    owners = {m["manager"]: patch.leaves(m["fieldsV1"])
              for m in edited["metadata"]["managedFields"]}
    assert owners["kubectl-edit"] == {("f:spec", "f:replicas")}
    assert ("f:spec", "f:replicas") not in owners["pifleet"]
    with pytest.raises(patch.ApplyConflict):
        patch.apply(edited, _deploy("app:1", replicas=1), "pifleet")
