"""Reviews: the create-only kinds that answer a question and store nothing.

SelfSubjectReview (`kubectl auth whoami`), SelfSubjectAccessReview (`kubectl auth can-i`),
SelfSubjectRulesReview (`kubectl auth can-i --list`), SubjectAccessReview and
LocalSubjectAccessReview (asked on someone's behalf), TokenReview (is this token valid here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import nodeauth
from .auth import Attributes, User, token_user
from .resources import Kind
from .store import ApiError, Obj

if TYPE_CHECKING:
    from .api import ApiServer


def _answer(kind: Kind, doc: Obj, status: Obj, spec: Obj | None = None) -> Obj:
    meta = dict(doc.get("metadata") or {})
    meta.setdefault("creationTimestamp", None)
    out: Obj = {"kind": kind.kind, "apiVersion": kind.api_version, "metadata": meta}
    if spec is not None:
        out["spec"] = spec
    out["status"] = status
    return out


def _attributes(spec: Obj, kind: Kind) -> Attributes:
    res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if res:
        return Attributes(verb=res.get("verb", ""), group=res.get("group", ""),
                          resource=res.get("resource", ""), subresource=res.get(
                              "subresource", ""), namespace=res.get("namespace", ""),
                          name=res.get("name", ""),
                          field_selector=(res.get("fieldSelector") or {}).get("rawSelector", ""),
                          label_selector=(res.get("labelSelector") or {}).get("rawSelector", ""))
    if non:
        return Attributes(verb=non.get("verb", ""), path=non.get("path", ""))
    raise ApiError(422, "Invalid", f'{kind.kind}.authorization.k8s.io "" is invalid: '
                   "spec.resourceAttributes: Invalid value: \"null\": exactly one of "
                   "nonResourceAttributes or resourceAttributes must be specified")


def _access(api: ApiServer, kind: Kind, doc: Obj, who: User, spec: Obj) -> Obj:
    allowed, reason = api.authorizer.decide(who, _attributes(spec, kind))
    status: Obj = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return _answer(kind, doc, status, spec)


def _rules(api: ApiServer, kind: Kind, doc: Obj, user: User) -> Obj:
    spec = doc.get("spec") or {}
    namespace = spec.get("namespace", "")
    rules = api.authorizer.rules(user, namespace)
    resource_rules: list[Obj] = []
    non_resource: list[Obj] = []
    for r in rules:
        if r.get("nonResourceURLs"):
            non_resource.append({"verbs": list(r.get("verbs") or []),
                                 "nonResourceURLs": list(r["nonResourceURLs"])})
        else:
            entry = {k: list(r.get(k) or []) for k in ("verbs", "apiGroups", "resources")}
            if r.get("resourceNames"):
                entry["resourceNames"] = list(r["resourceNames"])
            resource_rules.append(entry)
    status: Obj = {"resourceRules": resource_rules, "nonResourceRules": non_resource,
                   "incomplete": False}
    if nodeauth.node_name(user) is not None:
        status["incomplete"] = True
        status["evaluationError"] = "node authorizer does not support user rule resolution"
    return _answer(kind, doc, status, spec)


def review(api: ApiServer, kind: Kind, doc: Obj, user: User, namespace: str) -> Obj:
    """The answer to a review of `kind` (created with a POST; nothing is stored)."""
    spec = dict(doc.get("spec") or {})
    if kind.kind == "SelfSubjectReview":
        return _answer(kind, doc, {"userInfo": user.info()})
    if kind.kind == "SelfSubjectAccessReview":
        return _access(api, kind, doc, user, spec)
    if kind.kind == "SelfSubjectRulesReview":
        return _rules(api, kind, doc, user)
    if kind.kind in ("SubjectAccessReview", "LocalSubjectAccessReview"):
        if not spec.get("user") and not spec.get("groups"):
            raise ApiError(422, "Invalid", f'{kind.kind}.authorization.k8s.io "" is invalid: '
                           "spec.user: Invalid value: \"\": at least one of user or group must "
                           "be specified")
        if kind.kind == "LocalSubjectAccessReview":
            asked = (spec.get("resourceAttributes") or {}).get("namespace", "")
            if asked != namespace:
                raise ApiError(400, "BadRequest", f"spec.resourceAttributes.namespace must "
                               f"match namespace: {namespace}")
        extra: Any = spec.get("extra") or {}
        who = User(spec.get("user", ""), tuple(spec.get("groups") or []), spec.get("uid", ""),
                   tuple((k, tuple(v)) for k, v in extra.items()))
        return _access(api, kind, doc, who, spec)
    if kind.kind == "TokenReview":
        audiences = tuple(spec.get("audiences") or ())
        found = token_user(api.store, str(spec.get("token", "")), api.sa_pub,
                           *([audiences] if audiences else []))
        status: Obj = {"authenticated": found is not None}
        if found is not None:
            status["user"] = found.info()
            status["audiences"] = list(audiences) if audiences else [
                "https://kubernetes.default.svc.cluster.local"]
        else:
            status["error"] = "[invalid bearer token, token lookup failed]"
        return _answer(kind, doc, status, spec)
    raise ApiError(404, "NotFound", "the server could not find the requested resource")
