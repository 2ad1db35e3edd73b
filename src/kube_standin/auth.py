"""Who is asking (client certificate, bootstrap token, service-account token) and may they.

Authorisation follows RBAC over the stored ClusterRoles/Roles and their bindings, with the real
server's two shortcuts: `system:masters` may do anything, and so may kubelets (`system:nodes`),
which the real server limits through its Node authorizer instead; the stand-in does not.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from . import jws
from .resources import by_kind, must
from .store import ApiError, Store

BOOTSTRAP_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
SECRETS = must("", "v1", "secrets")
SERVICE_ACCOUNTS = must("", "v1", "serviceaccounts")
ISSUER = "https://kubernetes.default.svc.cluster.local"
PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz")


@dataclass(frozen=True)
class User:
    """An authenticated (or anonymous) requester."""

    name: str
    groups: tuple[str, ...] = field(default=())

    @property
    def anonymous(self) -> bool:
        """Whether no credentials were presented."""
        return self.name == "system:anonymous"


ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))


def _b64(secret: dict[str, Any], key: str) -> str:
    import base64

    raw = (secret.get("data") or {}).get(key)
    if raw is not None:
        return base64.b64decode(raw).decode()
    return str((secret.get("stringData") or {}).get(key, ""))


def bootstrap_token(store: Store, token_id: str) -> dict[str, str] | None:
    """The live, unexpired bootstrap token `token_id` as a dict of its Secret's fields."""
    secret = store.find(SECRETS, "kube-system", f"bootstrap-token-{token_id}")
    if secret is None or secret.get("type") != "bootstrap.kubernetes.io/token":
        return None
    fields = {k: _b64(secret, k) for k in (
        "token-id", "token-secret", "expiration", "usage-bootstrap-authentication",
        "usage-bootstrap-signing", "auth-extra-groups", "description")}
    if fields["expiration"]:
        expires = dt.datetime.strptime(fields["expiration"], "%Y-%m-%dT%H:%M:%SZ")
        if expires.replace(tzinfo=dt.UTC) < dt.datetime.now(dt.UTC):
            return None
    return fields


def authenticate(store: Store, cert_subject: tuple[str, list[str]] | None, bearer: str,
                 sa_pub: bytes) -> User:
    """The requester. Presented but invalid credentials are 401, as in the real server."""
    if cert_subject is not None and cert_subject[0]:
        return User(cert_subject[0], (*cert_subject[1], "system:authenticated"))
    if not bearer:
        return ANONYMOUS
    m = BOOTSTRAP_RE.match(bearer)
    if m:
        tok = bootstrap_token(store, m.group(1))
        if (tok and tok["token-secret"] == m.group(2)
                and tok["usage-bootstrap-authentication"] == "true"):
            extra = [g for g in tok["auth-extra-groups"].split(",") if g]
            return User(f"system:bootstrap:{m.group(1)}",
                        ("system:bootstrappers", *extra, "system:authenticated"))
        raise ApiError(401, "Unauthorized", "Unauthorized")
    claims = jws.verify_jwt(bearer, sa_pub) if sa_pub else None
    audiences = claims.get("aud") if claims else None
    audiences = [audiences] if isinstance(audiences, str) else audiences or []
    # Like --api-audiences: a token minted for another audience does not log in here.
    if claims and claims.get("iss") == ISSUER and ISSUER in audiences:
        info = claims.get("kubernetes.io") or {}
        ns, sa = info.get("namespace", ""), (info.get("serviceaccount") or {})
        live = store.find(SERVICE_ACCOUNTS, ns, sa.get("name", ""))
        bound = info.get("secret")
        holder = store.find(SECRETS, ns, bound.get("name", "")) if bound else None
        # A token outlives nothing: deleting its ServiceAccount (or its Secret) revokes it.
        if live is not None and live["metadata"]["uid"] == sa.get("uid") and (
                not bound or (holder is not None and holder["metadata"]["uid"] ==
                              bound.get("uid"))):
            return User(f"system:serviceaccount:{ns}:{sa['name']}",
                        ("system:serviceaccounts", f"system:serviceaccounts:{ns}",
                         "system:authenticated"))
    raise ApiError(401, "Unauthorized", "Unauthorized")


def _subject_matches(subject: dict[str, Any], user: User) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        return user.name == f"system:serviceaccount:{subject.get('namespace')}:{name}"
    return False


def _rule_allows(rule: dict[str, Any], verb: str, group: str, resource: str, name: str,
                 path: str) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and verb not in verbs:
        return False
    if path:
        urls = rule.get("nonResourceURLs") or []
        return any(u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1]))
                   for u in urls)
    groups = rule.get("apiGroups")
    if groups is None or ("*" not in groups and group not in groups):
        return False
    resources = rule.get("resources") or []
    if "*" not in resources and resource not in resources:
        return False
    names = rule.get("resourceNames") or []
    return not names or name in names


def _roles(store: Store, user: User, namespace: str) -> list[dict[str, Any]]:
    rbac = "rbac.authorization.k8s.io/v1"
    crb, rb = by_kind(rbac, "ClusterRoleBinding"), by_kind(rbac, "RoleBinding")
    cr, role = by_kind(rbac, "ClusterRole"), by_kind(rbac, "Role")
    assert crb and rb and cr and role
    rules: list[dict[str, Any]] = []
    bindings = [(b, "") for b in store.list(crb)[0]]
    if namespace:
        bindings += [(b, namespace) for b in store.list(rb, namespace)[0]]
    for binding, ns in bindings:
        if not any(_subject_matches(s, user) for s in binding.get("subjects") or []):
            continue
        ref = binding.get("roleRef") or {}
        found = (store.find(cr, "", ref.get("name", "")) if ref.get("kind") == "ClusterRole"
                 else store.find(role, ns, ref.get("name", "")))
        if found:
            rules += found.get("rules") or []
    return rules


def authorize(store: Store, user: User, verb: str, *, group: str = "", resource: str = "",
              namespace: str = "", name: str = "", path: str = "") -> None:
    """Raise 403 unless `user` may do `verb` on the resource (or non-resource `path`)."""
    if "system:masters" in user.groups or "system:nodes" in user.groups:
        return
    if path and path in PUBLIC_PATHS:
        return
    if path and not user.anonymous and (path.startswith(("/api", "/openapi"))):
        return  # system:discovery, bound to every authenticated user
    if any(_rule_allows(r, verb, group, resource, name, path)
           for r in _roles(store, user, namespace)):
        return
    if path:
        msg = f'forbidden: User "{user.name}" cannot {verb} path "{path}"'
    else:
        base = resource.split("/")[0]
        res = f"{base}.{group}" if group else base
        sub = f' subresource "{resource.split("/")[1]}"' if "/" in resource else ""
        named = f'"{name}" ' if name else ""
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        msg = (f'{res} {named}is forbidden: User "{user.name}" cannot {verb} resource '
               f'"{base}" in API group "{group}"{sub}{where}')
    raise ApiError(403, "Forbidden", msg)
