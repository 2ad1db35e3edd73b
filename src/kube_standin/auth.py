"""Who is asking (client certificate, bootstrap token, service-account token) and may they.

Authorization is the real server's chain `Node,RBAC`: `system:masters` may do anything; a
kubelet's identity (`system:node:NAME` in `system:nodes`) goes to the Node authorizer
(`nodeauth`), then to RBAC; everyone else to RBAC over the stored roles and bindings.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import threading
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from . import jws, nodeauth
from .resources import SECRETS, SERVICE_ACCOUNTS, by_kind
from .store import ApiError, Store

BOOTSTRAP_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
ISSUER = "https://kubernetes.default.svc.cluster.local"
RBAC = "rbac.authorization.k8s.io/v1"


@dataclass(frozen=True)
class User:
    """An authenticated (or anonymous) requester."""

    name: str
    groups: tuple[str, ...] = field(default=())
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def anonymous(self) -> bool:
        """Whether no credentials were presented."""
        return self.name == "system:anonymous"

    def info(self) -> dict[str, Any]:
        """The `UserInfo` of reviews."""
        out: dict[str, Any] = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra}
        return out


ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))


@dataclass(frozen=True)
class Attributes:
    """What a request does, as authorizers see it."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # non-resource requests
    field_selector: str = ""
    label_selector: str = ""

    @property
    def resource_request(self) -> bool:
        """True unless this is a non-resource URL."""
        return not self.path


def _b64(secret: dict[str, Any], key: str) -> str:
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


def service_account_user(namespace: str, name: str, uid: str = "") -> User:
    """The user a ServiceAccount's token logs in as."""
    return User(f"system:serviceaccount:{namespace}:{name}",
                ("system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                 "system:authenticated"), uid)


def token_user(store: Store, bearer: str, sa_pub: bytes,
               audiences: tuple[str, ...] = (ISSUER,)) -> User | None:
    """The user a bearer token stands for, or None when it is not valid here."""
    m = BOOTSTRAP_RE.match(bearer)
    if m:
        tok = bootstrap_token(store, m.group(1))
        if (tok and tok["token-secret"] == m.group(2)
                and tok["usage-bootstrap-authentication"] == "true"):
            extra = [g for g in tok["auth-extra-groups"].split(",") if g]
            return User(f"system:bootstrap:{m.group(1)}",
                        ("system:bootstrappers", *extra, "system:authenticated"))
        return None
    claims = jws.verify_jwt(bearer, sa_pub) if sa_pub else None
    aud = claims.get("aud") if claims else None
    aud = [aud] if isinstance(aud, str) else aud or []
    # Like --api-audiences: a token minted for another audience does not log in here.
    if not claims or claims.get("iss") != ISSUER or not set(audiences) & set(aud):
        return None
    info = claims.get("kubernetes.io") or {}
    ns, sa = info.get("namespace", ""), (info.get("serviceaccount") or {})
    live = store.find(SERVICE_ACCOUNTS, ns, sa.get("name", ""))
    bound = info.get("secret")
    holder = store.find(SECRETS, ns, bound.get("name", "")) if bound else None
    # A token outlives nothing: deleting its ServiceAccount (or its Secret) revokes it.
    if live is None or live["metadata"]["uid"] != sa.get("uid") or (
            bound and (holder is None or holder["metadata"]["uid"] != bound.get("uid"))):
        return None
    return service_account_user(ns, sa["name"], sa.get("uid", ""))


def authenticate(store: Store, cert_subject: tuple[str, list[str]] | None, bearer: str,
                 sa_pub: bytes) -> User:
    """The requester. Presented but invalid credentials are 401, as in the real server."""
    if cert_subject is not None and cert_subject[0]:
        return User(cert_subject[0], (*cert_subject[1], "system:authenticated"))
    if not bearer:
        return ANONYMOUS
    user = token_user(store, bearer, sa_pub)
    if user is None:
        raise ApiError(401, "Unauthorized", "Unauthorized")
    return user


# ---- RBAC ----

def _subject_matches(subject: dict[str, Any], user: User, namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or namespace
        return user.name == f"system:serviceaccount:{ns}:{name}"
    return False


def rule_allows(rule: dict[str, Any], a: Attributes) -> bool:
    """Whether one PolicyRule covers the request, by RBAC's matching rules."""
    verbs = rule.get("verbs") or []
    if "*" not in verbs and a.verb not in verbs:
        return False
    if not a.resource_request:
        urls = rule.get("nonResourceURLs") or []
        return any(u == "*" or u == a.path or (u.endswith("*") and a.path.startswith(u[:-1]))
                   for u in urls)
    groups = rule.get("apiGroups")
    if groups is None or ("*" not in groups and a.group not in groups):
        return False
    wanted = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    listed = rule.get("resources") or []
    if not ("*" in listed or wanted in listed
            or (a.subresource and (f"*/{a.subresource}" in listed
                                   or f"{a.resource}/*" in listed))):
        return False
    names = rule.get("resourceNames") or []
    return not names or a.name in names


class Authorizer:
    """Node, then RBAC, with the `system:masters` shortcut; RBAC objects cached between
    changes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._seen = -1
        self._roles: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self._bindings: list[tuple[dict[str, Any], str]] = []

    def _refresh(self) -> None:
        kinds = [by_kind(RBAC, k) for k in ("ClusterRole", "ClusterRoleBinding", "Role",
                                             "RoleBinding")]
        cr, crb, role, rb = kinds
        assert cr and crb and role and rb
        version = self.store.changed_at(*kinds)  # type: ignore[arg-type]
        with self._lock:
            if version == self._seen:
                return
            roles: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
            for r in self.store.list(cr)[0]:
                roles[("ClusterRole", "", r["metadata"]["name"])] = r.get("rules") or []
            for r in self.store.list(role)[0]:
                roles[("Role", r["metadata"]["namespace"], r["metadata"]["name"])] = \
                    r.get("rules") or []
            bindings = [(b, "") for b in self.store.list(crb)[0]]
            bindings += [(b, b["metadata"]["namespace"]) for b in self.store.list(rb)[0]]
            self._roles, self._bindings, self._seen = roles, bindings, version

    def rules(self, user: User, namespace: str) -> list[dict[str, Any]]:
        """The RBAC rules that apply to `user` in `namespace` ('' for cluster scope only)."""
        self._refresh()
        out: list[dict[str, Any]] = []
        for binding, ns in self._bindings:
            if ns and ns != namespace:
                continue
            if not any(_subject_matches(s, user, ns) for s in binding.get("subjects") or []):
                continue
            ref = binding.get("roleRef") or {}
            key = ("ClusterRole", "", ref.get("name", "")) if ref.get("kind") == "ClusterRole" \
                else ("Role", ns, ref.get("name", ""))
            out += self._roles.get(key, [])
        return out

    def decide(self, user: User, a: Attributes) -> tuple[bool, str]:
        """(allowed, reason), as the authorizer chain answers."""
        if "system:masters" in user.groups:
            return True, ""
        reason = ""
        node = nodeauth.node_name(user)
        if node is not None:
            allowed, reason = nodeauth.decide(self.store, node, a)
            if allowed:
                return True, ""
        if any(rule_allows(r, a) for r in self.rules(user, a.namespace)):
            return True, ""
        return False, reason


def forbidden_message(user: User, a: Attributes, reason: str = "") -> str:
    """The real server's 403 wording."""
    tail = f": {reason}" if reason else ""
    if not a.resource_request:
        return f'forbidden: User "{user.name}" cannot {a.verb} path "{a.path}"{tail}'
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    where = f' in the namespace "{a.namespace}"' if a.namespace else " at the cluster scope"
    qualified = f"{a.resource}.{a.group}" if a.group else a.resource
    named = f' "{a.name}"' if a.name else ""
    return (f'{qualified}{named} is forbidden: User "{user.name}" cannot {a.verb} resource '
            f'"{resource}" in API group "{a.group}"{where}{tail}')


def authorize(authorizer: Authorizer, user: User, a: Attributes) -> None:
    """Raise 403 unless `user` may do what `a` describes."""
    allowed, reason = authorizer.decide(user, a)
    if not allowed:
        raise ApiError(403, "Forbidden", forbidden_message(user, a, reason),
                       {"name": a.name, "group": a.group, "kind": a.resource}
                       if a.resource_request else {})


def selected_name(field_selector: str) -> str:
    """The name a `metadata.name=X` field selector picks (the real server authorizes such a
    list as a request for that one object)."""
    for term in (field_selector or "").split(","):
        key, _, value = term.replace("==", "=").partition("=")
        if key.strip() == "metadata.name" and "!" not in key:
            return value.strip()
    return ""


# ---- impersonation (kubectl --as / --as-group) ----

def impersonate(authorizer: Authorizer, user: User, headers: Message) -> User:
    """The user a request acts as: itself, or whom its `Impersonate-*` headers name, once
    `user` may impersonate them."""
    name = headers.get("Impersonate-User", "")
    groups = headers.get_all("Impersonate-Group") or []
    uid = headers.get("Impersonate-Uid", "")
    extras = {k[len("Impersonate-Extra-"):].lower(): headers.get_all(k) or []
              for k in headers if k.lower().startswith("impersonate-extra-")}
    if not name:
        if groups or uid or extras:
            raise ApiError(400, "BadRequest", "requested impersonation of groups, uid or "
                           "extras without impersonating a user")
        return user
    checks: list[Attributes] = []
    if name.startswith("system:serviceaccount:") and name.count(":") == 3:
        ns, sa = name.split(":")[2:]
        checks.append(Attributes("impersonate", "", "serviceaccounts", namespace=ns, name=sa))
        base = service_account_user(ns, sa)
        implied = list(base.groups)
    else:
        checks.append(Attributes("impersonate", "", "users", name=name))
        implied = ["system:unauthenticated"] if name == "system:anonymous" else \
            ["system:authenticated"]
    checks += [Attributes("impersonate", "", "groups", name=g) for g in groups]
    if uid:
        checks.append(Attributes("impersonate", "authentication.k8s.io", "uids", name=uid))
    for key, values in extras.items():
        checks += [Attributes("impersonate", "authentication.k8s.io", "userextras",
                              subresource=key, name=v) for v in values]
    for check in checks:
        allowed, reason = authorizer.decide(user, check)
        if not allowed:
            raise ApiError(403, "Forbidden", forbidden_message(user, check, reason),
                           {"name": check.name, "kind": check.resource})
    all_groups = tuple(dict.fromkeys([*groups, *implied]))
    return User(name, all_groups, uid, tuple((k, tuple(v)) for k, v in extras.items()))
