"""The checks a write must pass, with the real server's 422 wording for the common mistakes.

Not the whole of Kubernetes' validation: names, the selectors of workloads, containers and
their images, service ports, Job restart policies and the fields that may not change.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .store import ApiError, Obj, selector_match

SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Kinds whose names are DNS labels rather than subdomains.
LABEL_NAMED = {"Namespace", "Service"}
# Kinds whose names may be any path segment (roles and bindings: `system:...`).
FREE_NAMED = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Node", "Event",
              "CertificateSigningRequest"}
WORKLOADS = {"Deployment", "DaemonSet", "ReplicaSet", "Job"}


class Invalid:
    """Collects field errors and raises them as one 422."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name
        self.causes: list[tuple[str, str, str]] = []  # (reason, field, message)

    def add(self, reason: str, field: str, message: str) -> None:
        self.causes.append((reason, field, message))

    def raise_if_any(self) -> None:
        if not self.causes:
            return
        texts = [f"{f}: {m}" for _, f, m in self.causes]
        message = f'{self.kind} "{self.name}" is invalid: ' + (
            texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]")
        raise ApiError(422, "Invalid", message, {
            "name": self.name, "kind": self.kind,
            "causes": [{"reason": r, "field": f, "message": m} for r, f, m in self.causes]})


def _go_map(labels: dict[str, str]) -> str:
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(
        labels.items())) + "}"


def _name(kind: str, name: str, errors: Invalid) -> None:
    if not name or kind in FREE_NAMED:
        if kind in FREE_NAMED and ("/" in name or name in (".", "..")):
            errors.add("FieldValueInvalid", "metadata.name",
                       f'Invalid value: "{name}": may not contain \'/\'')
        return
    pattern, what = (LABEL, "RFC 1123 label") if kind in LABEL_NAMED else (
        SUBDOMAIN, "RFC 1123 subdomain")
    if len(name) > (63 if kind in LABEL_NAMED else 253) or not pattern.match(name):
        errors.add("FieldValueInvalid", "metadata.name",
                   f'Invalid value: "{name}": a lowercase {what} must consist of lower case '
                   "alphanumeric characters, '-' or '.', and must start and end with an "
                   "alphanumeric character")


def _containers(spec: Obj, path: str, errors: Invalid) -> None:
    containers = spec.get("containers") or []
    if not containers:
        errors.add("FieldValueRequired", f"{path}.containers", "Required value")
    seen: set[str] = set()
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or []):
            where = f"{path}.{key}[{i}]"
            if not c.get("name"):
                errors.add("FieldValueRequired", f"{where}.name", "Required value")
            elif c["name"] in seen:
                errors.add("FieldValueDuplicate", f"{where}.name",
                           f'Duplicate value: "{c["name"]}"')
            seen.add(c.get("name", ""))
            if not c.get("image"):
                errors.add("FieldValueRequired", f"{where}.image", "Required value")


def _workload(kind: str, obj: Obj, errors: Invalid) -> None:
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if kind != "Job" or spec.get("manualSelector"):
        if not selector or not (selector.get("matchLabels") or selector.get(
                "matchExpressions")):
            errors.add("FieldValueRequired", "spec.selector", "Required value")
        elif not selector_match(selector, labels):
            errors.add("FieldValueInvalid", "spec.template.metadata.labels",
                       f"Invalid value: {_go_map(labels)}: `selector` does not match template "
                       "`labels`")
    template_spec = (spec.get("template") or {}).get("spec") or {}
    _containers(template_spec, "spec.template.spec", errors)
    policy = template_spec.get("restartPolicy")
    if kind == "Job" and policy not in ("OnFailure", "Never"):
        errors.add("FieldValueNotSupported", "spec.template.spec.restartPolicy",
                   f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"')
    if kind in ("Deployment", "DaemonSet", "ReplicaSet") and policy not in (None, "Always"):
        errors.add("FieldValueNotSupported", "spec.template.spec.restartPolicy",
                   f'Unsupported value: "{policy}": supported values: "Always"')
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        errors.add("FieldValueInvalid", "spec.replicas",
                   f"Invalid value: {replicas}: must be greater than or equal to 0")


def _service(obj: Obj, errors: Invalid) -> None:
    spec = obj.get("spec") or {}
    ports = spec.get("ports") or []
    if not ports and spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None":
        errors.add("FieldValueRequired", "spec.ports", "Required value")
    for i, port in enumerate(ports):
        number = port.get("port")
        if not isinstance(number, int) or not 0 < number < 65536:
            errors.add("FieldValueInvalid", f"spec.ports[{i}].port",
                       f"Invalid value: {json.dumps(number)}: must be between 1 and 65535, "
                       "inclusive")
        if len(ports) > 1 and not port.get("name"):
            errors.add("FieldValueRequired", f"spec.ports[{i}].name", "Required value")


def check(kind: str, obj: Obj, old: Obj | None = None) -> None:
    """Raise 422 Invalid if `obj` (defaults applied) is not a valid `kind`, or, on update from
    `old`, changes a field that may not change."""
    meta = obj.get("metadata") or {}
    errors = Invalid(kind, meta.get("name", ""))
    _name(kind, meta.get("name", ""), errors)
    for key in ("labels", "annotations"):
        values = meta.get(key)
        if values is not None and (not isinstance(values, dict) or any(
                not isinstance(v, str) for v in values.values())):
            errors.add("FieldValueInvalid", f"metadata.{key}", "Invalid value: values must be "
                       "strings")
    if kind in WORKLOADS:
        _workload(kind, obj, errors)
    elif kind == "Pod":
        _containers(obj.get("spec") or {}, "spec", errors)
    elif kind == "Service":
        _service(obj, errors)
    if old is not None:
        _immutable(kind, old, obj, errors)
    errors.raise_if_any()


IMMUTABLE: dict[str, list[tuple[str, ...]]] = {
    "Deployment": [("spec", "selector")], "ReplicaSet": [("spec", "selector")],
    "DaemonSet": [("spec", "selector")],
    "Job": [("spec", "selector"), ("spec", "template"), ("spec", "completions")],
    "Secret": [], "ConfigMap": [],
}


def _at(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _immutable(kind: str, old: Obj, new: Obj, errors: Invalid) -> None:
    for path in IMMUTABLE.get(kind, []):
        if _at(old, path) != _at(new, path):
            errors.add("FieldValueInvalid", ".".join(path), "Invalid value: field is immutable")
    if kind in ("Secret", "ConfigMap") and old.get("immutable"):
        for key in ("data", "binaryData", "stringData"):
            if old.get(key) != new.get(key):
                errors.add("FieldValueForbidden", key,
                           "Forbidden: field is immutable when `immutable` is set")
