"""Server-side apply of a list of objects, reporting per object what changed.

pifleet applies with field manager `pifleet`. A change is judged by comparing the object as
the server held it before with what the apply returned (spec, metadata and data; not status,
resourceVersion or field ownership), so a re-run reports `unchanged` for every object and a
dry run reports what a real run would do. Conflicts are forced only over fields that pifleet
itself set earlier under another operation; a field someone else changed is reported, never
silently taken back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lightkube.core.exceptions import ApiError as LightkubeApiError
from lightkube.types import PatchType

from pifleet.errors import BadInput
from pifleet.kube.client import Api, resource
from pifleet.kube.errors import KubeError
from pifleet.kube.objects import Obj, ref
from pifleet.kube.pins import FIELD_MANAGER

_MANAGER = re.compile(r'conflict with "([^"]+)"')


class Outcome(StrEnum):
    """What applying one object did (or, in a dry run, would do)."""

    CREATED = "created"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Applied:
    """One object's outcome. `checked` is False when a dry run could not ask the server (its
    namespace does not exist yet, so only a real run can create it)."""

    ref: str
    outcome: Outcome
    dry_run: bool = False
    checked: bool = True

    @property
    def changed(self) -> bool:
        """Whether the object was (or would be) created or changed."""
        return self.outcome is not Outcome.UNCHANGED


class ApplyConflict(KubeError):
    """Fields pifleet sets were changed by another manager; pifleet did not overwrite them."""


def _comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(obj)
    data.pop("status", None)
    meta = dict(data.get("metadata") or {})
    for volatile in ("resourceVersion", "generation", "managedFields"):
        meta.pop(volatile, None)
    data["metadata"] = meta
    return data


def _conflict_managers(err: LightkubeApiError) -> list[str]:
    causes = getattr(getattr(err.status, "details", None), "causes", None) or []
    found = [m for c in causes for m in _MANAGER.findall(str(getattr(c, "message", "") or ""))]
    return found or _MANAGER.findall(str(err.status.message or ""))


def _is_ours(manager: str) -> bool:
    return manager == FIELD_MANAGER or manager.startswith(FIELD_MANAGER + "-")


def apply_one(api: Api, obj: Mapping[str, Any], *, dry_run: bool = False,
              force: bool = False) -> Applied:
    """Server-side apply one object and say whether it was created, changed or unchanged."""
    meta = obj.get("metadata") or {}
    name, namespace = meta.get("name"), meta.get("namespace")
    if not name:
        raise BadInput(f"{ref(obj)}: no name")
    res = resource(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    where = {"namespace": namespace} if namespace else {}
    with api.talking():
        try:
            live = api.lightkube.get(res, name, **where)
        except LightkubeApiError as err:
            if err.status.code != 404:
                raise
            live = None

        def patch(force_it: bool) -> Any:
            return api.lightkube.patch(res, name, dict(obj), patch_type=PatchType.APPLY,
                                       field_manager=FIELD_MANAGER, force=force_it,
                                       dry_run=dry_run, **where)

        try:
            result = patch(force)
        except LightkubeApiError as err:
            if err.status.code != 409:
                raise
            managers = _conflict_managers(err)
            if not managers or not all(_is_ours(m) for m in managers):
                others = ", ".join(sorted(set(managers))) or "another manager"
                raise ApplyConflict(
                    f"{ref(obj)}: fields pifleet sets were changed by {others} "
                    f"({err.status.message}); pifleet does not overwrite others' changes: "
                    "undo them, or apply again with force") from None
            result = patch(True)
    if live is None:
        outcome = Outcome.CREATED
    else:
        outcome = Outcome.UNCHANGED if _comparable(live) == _comparable(result) \
            else Outcome.CHANGED
    return Applied(ref(obj), outcome, dry_run)


def apply(api: Api, objects: Iterable[Obj], *, dry_run: bool = False, force: bool = False,
          on_applied: Callable[[Applied], None] | None = None) -> list[Applied]:
    """Apply `objects` in order (namespaces first, as the manifests list them).

    In a dry run, objects in a namespace the same dry run would create cannot be checked by
    the server (the namespace is not there): they are reported as created, unchecked.
    """
    done: list[Applied] = []
    new_namespaces: set[str] = set()
    for obj in objects:
        namespace = (obj.get("metadata") or {}).get("namespace")
        if dry_run and namespace in new_namespaces:
            applied = Applied(ref(obj), Outcome.CREATED, True, checked=False)
        else:
            applied = apply_one(api, obj, dry_run=dry_run, force=force)
        if obj.get("kind") == "Namespace" and applied.outcome is Outcome.CREATED:
            new_namespaces.add(obj["metadata"]["name"])
        done.append(applied)
        if on_applied is not None:
            on_applied(applied)
    return done
