"""The API server stand-in's verbs, apart from HTTP: what a write goes through before it is
stored (defaulting, admission, validation, field ownership), `dryRun`, pagination, the scale
and eviction subresources, TokenRequest and the start-up objects the real server creates."""

from __future__ import annotations

import argparse
import base64
import copy
import ipaddress
import json
import random
import threading
import time
import uuid
from pathlib import Path

from . import (
    admission,
    auth,
    certificates,
    defaults,
    media,
    nodelifecycle,
    patch,
    pki,
    rbac_defaults,
    resources,
    shape,
    validate,
)
from .jws import detached_jws, sign_jwt
from .paths import BANNER, git_version
from .resources import (
    CLUSTER_ROLE_BINDINGS,
    CLUSTER_ROLES,
    NAMESPACES,
    PODS,
    SERVICE_ACCOUNTS,
    SERVICES,
    Kind,
)
from .store import ApiError, Obj, Store, label_match, not_found, now_stamp

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
NODE_PORTS = range(30000, 32768)
# Fields the server owns: a client's values for them are ignored on create.
SERVER_META = ("uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp",
               "deletionGracePeriodSeconds", "selfLink")
# Kinds whose DELETE answers with the object (graceful deletion); others answer a Status.
RETURNS_DELETED = {"Pod", "Namespace"}


def version_info() -> Obj:
    """`/version`. gitVersion keeps the real shape for kubectl; the rest says what this is."""
    v = git_version()
    major, minor = v[1:].split(".")[:2]
    return {"major": major, "minor": minor, "gitVersion": v,
            "gitCommit": "sandbox-standin", "gitTreeState": "clean",
            "buildDate": "1970-01-01T00:00:00Z", "goVersion": "none (" + BANNER + ")",
            "compiler": "python3", "platform": "linux/sandbox-standin",
            "emulationMajor": major, "emulationMinor": minor}


def success(kind: Kind, obj: Obj) -> Obj:
    """The `Status` a DELETE answers when it does not return the object."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": obj["metadata"]["name"], "group": kind.group,
                        "kind": kind.plural, "uid": obj["metadata"].get("uid", "")}}


def selector_text(selector: Obj | None) -> str:
    """A LabelSelector as the string form Scale and kubectl use."""
    parts = [f"{k}={v}" for k, v in sorted(((selector or {}).get("matchLabels") or {}).items())]
    for e in (selector or {}).get("matchExpressions") or []:
        values = ",".join(e.get("values") or [])
        parts.append({"In": f"{e['key']} in ({values})", "NotIn": f"{e['key']} notin ({values})",
                      "Exists": e["key"], "DoesNotExist": f"!{e['key']}"}[e["operator"]])
    return ",".join(parts)


def _continue_token(rv: str, key: tuple[str, str]) -> str:
    body = json.dumps({"v": "meta.k8s.io/v1", "rv": int(rv), "start": "/".join(key) + "\x00"})
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def _read_continue(token: str) -> tuple[str, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        ns, _, name = str(data["start"]).rstrip("\x00").partition("/")
        return str(data["rv"]), (ns, name)
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "BadRequest", "continue key is not valid: the token does not "
                       "decode") from None


class RequestContext(threading.local):
    """Per thread: how the request being served wants unknown fields handled, and the
    warnings it collects for its answer (`Warning` headers). The controllers' thread keeps
    the defaults: unknown fields dropped silently."""

    def __init__(self) -> None:
        self.field_validation = "Ignore"
        self.warnings: list[str] = []


class ApiServer:
    """The state and verbs of the API, independent of HTTP."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.store = Store(Path(args.state_file) if args.state_file else None)
        self.authorizer = auth.Authorizer(self.store)
        self.ca = pki.Pair(Path(args.client_ca_file).read_bytes(),
                           Path(args.cluster_signing_key_file).read_bytes()
                           if args.cluster_signing_key_file else b"")
        self.sa_key = (Path(args.service_account_signing_key_file).read_bytes()
                       if args.service_account_signing_key_file else b"")
        self.sa_pub = (Path(args.service_account_key_file).read_bytes()
                       if args.service_account_key_file else b"")
        self.service_net = ipaddress.ip_network(args.service_cluster_ip_range.split(",")[0])
        self.cluster_cidr = args.cluster_cidr or ""
        self.advertise = args.advertise_address
        self.port = int(args.secure_port)
        self.address = f"{args.advertise_address}:{args.secure_port}"
        self.lock = threading.RLock()  # one writer at a time, controllers included
        self.context = RequestContext()
        nodelifecycle.configure(getattr(args, "default_not_ready_toleration_seconds", 300),
                                getattr(args, "default_unreachable_toleration_seconds", 300))
        self._bootstrap()

    # ---- start-up objects the real server creates itself ----
    def _bootstrap(self) -> None:
        for name in SYSTEM_NAMESPACES:
            if self.store.find(NAMESPACES, "", name) is None:
                self.create(NAMESPACES, {"metadata": {"name": name}}, "")
        if self.store.find(SERVICES, "default", "kubernetes") is None:
            self.create(SERVICES, {"metadata": {"name": "kubernetes", "namespace": "default",
                                                "labels": {"component": "apiserver",
                                                           "provider": "kubernetes"}},
                                   "spec": {"type": "ClusterIP", "ports": [
                                       {"name": "https", "port": 443, "protocol": "TCP",
                                        "targetPort": self.port}]}}, "default")
        for role in rbac_defaults.cluster_roles():
            if self.store.find(CLUSTER_ROLES, "", role["metadata"]["name"]) is None:
                self.store.create(CLUSTER_ROLES, role)
        for binding in rbac_defaults.cluster_role_bindings():
            if self.store.find(CLUSTER_ROLE_BINDINGS, "", binding["metadata"]["name"]) is None:
                self.store.create(CLUSTER_ROLE_BINDINGS, binding)
        aggregate_roles(self.store)

    # ---- reads ----
    def get(self, kind: Kind, namespace: str, name: str) -> Obj:
        """One object (a subresource such as status reads as the whole object)."""
        obj = self.store.get(kind, namespace if kind.namespaced else "", name)
        if kind.kind == "ConfigMap" and (namespace, name) == ("kube-public", "cluster-info"):
            obj = self.sign_cluster_info(obj)
        return obj

    def list(self, kind: Kind, namespace: str, labels: str = "", fields: str = "",
             limit: int = 0, cont: str = "") -> Obj:
        """A List, a page at a time when `limit` is given (`continue` names the next page)."""
        after = None
        snapshot = ""
        if cont:
            snapshot, after = _read_continue(cont)
        items, rv, last, more = self.store.page(kind, namespace if kind.namespaced else "",
                                                labels, fields, limit, after)
        meta: Obj = {"resourceVersion": snapshot or rv}
        if last is not None:
            meta["continue"] = _continue_token(snapshot or rv, last)
            if not labels and not fields:
                meta["remainingItemCount"] = more
        return {"kind": f"{kind.kind}List", "apiVersion": kind.api_version, "metadata": meta,
                "items": items}

    # ---- writes ----
    def create(self, kind: Kind, obj: Obj, namespace: str, user: auth.User | None = None,
               manager: str = "", dry_run: bool = False) -> Obj:
        """POST: defaulting, admission, validation, then store (or only answer: `dry_run`)."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if meta.get("resourceVersion"):
            raise ApiError(400, "BadRequest",
                           "resourceVersion should not be set on objects to be created")
        for key in SERVER_META:
            meta.pop(key, None)
        if kind.namespaced:
            given = meta.get("namespace")
            if namespace and given and given != namespace:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not "
                               "match the namespace sent on the request")
            meta["namespace"] = namespace or given or "default"
            ns_obj = self.store.find(NAMESPACES, "", meta["namespace"])
            if ns_obj is None:
                raise ApiError(404, "NotFound", f'namespaces "{meta["namespace"]}" not found',
                               {"name": meta["namespace"], "kind": "namespaces"})
            if (ns_obj.get("status") or {}).get("phase") == "Terminating":
                raise ApiError(403, "Forbidden", f'{kind.qualified} "{meta.get("name", "")}" is '
                               f'forbidden: unable to create new content in namespace '
                               f'{meta["namespace"]} because it is being terminated')
        uid = str(uuid.uuid4())
        self._known_fields(kind, obj)
        with self.lock:
            self._prepare_create(kind, obj, uid)
            defaults.apply(kind.kind, obj)
            admission.node_restriction(user, "create", kind, meta.get("name", ""), "", obj, None)
            if kind.kind == "Pod":
                account = self.store.find(SERVICE_ACCOUNTS, meta["namespace"],
                                          (obj.get("spec") or {}).get("serviceAccountName")
                                          or "default")
                admission.pod_admission(obj, account)
            elif kind.kind == "Service":
                self._allocate(obj, None)
            elif kind.kind == "CertificateSigningRequest":
                self._csr(obj, user)
            validate.check(kind.kind, obj)
            patch.record_update(None, obj, manager)
            created = self.store.create(kind, obj, dry_run=dry_run, uid=uid)
            if kind.kind == "Namespace" and not dry_run:
                self.store.create(SERVICE_ACCOUNTS, {"metadata": {
                    "name": "default", "namespace": created["metadata"]["name"]}})
        return created

    def _known_fields(self, kind: Kind, obj: Obj) -> None:
        """Drop fields the kind does not have, as decoding into the real types does; say so
        as the request's `fieldValidation` asks (Strict: 400, Warn: a warning)."""
        found = shape.prune_unknown(kind.api_version, kind.kind, obj)
        if not found:
            return
        if self.context.field_validation == "Strict":
            raise ApiError(400, "BadRequest", f'{kind.kind} in version "{kind.version}" cannot '
                           f"be handled as a {kind.kind}: strict decoding error: " +
                           ", ".join(f'unknown field "{p}"' for p in found))
        if self.context.field_validation == "Warn":
            self.context.warnings += [f'unknown field "{p}"' for p in found]

    def _prepare_create(self, kind: Kind, obj: Obj, uid: str) -> None:
        """What each kind's registry does before a new object is stored."""
        spec = obj.get("spec")
        if kind.kind == "Pod":
            obj["status"] = {"phase": "Pending", "qosClass": _qos(obj.get("spec") or {})}
        elif kind.kind == "DaemonSet":
            # The integer fields the real server always writes (typed clients require them).
            obj["status"] = dict.fromkeys(("currentNumberScheduled", "numberMisscheduled",
                                           "desiredNumberScheduled", "numberReady"), 0)
        elif kind.kind in ("Deployment", "ReplicaSet", "Job"):
            obj["status"] = {"replicas": 0} if kind.kind == "ReplicaSet" else {}
        elif kind.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        if kind.kind == "Job" and isinstance(spec, dict):
            _job_labels(obj, uid)

    def _allocate(self, obj: Obj, live: Obj | None) -> None:
        """Cluster IPs and node ports, kept from `live` on update as the real registry does."""
        spec = obj.setdefault("spec", {})
        old = (live or {}).get("spec") or {}
        if spec.get("type") == "ExternalName":
            return
        if old.get("clusterIP") and not spec.get("clusterIP"):
            spec["clusterIP"] = old["clusterIP"]
        if not spec.get("clusterIP"):
            spec["clusterIP"] = self._next_service_ip(obj.get("metadata") or {})
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec["clusterIPs"] = [spec["clusterIP"]]
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            used = {p.get("nodePort") for s in self.store.list(SERVICES)[0]
                    for p in (s.get("spec") or {}).get("ports") or []}
            kept = {p.get("port"): p.get("nodePort") for p in old.get("ports") or []}
            for port in spec.get("ports") or []:
                if not port.get("nodePort"):
                    port["nodePort"] = kept.get(port.get("port")) or next(
                        n for n in random.sample(NODE_PORTS, len(NODE_PORTS)) if n not in used)
                used.add(port["nodePort"])

    def _next_service_ip(self, meta: Obj) -> str:
        if meta.get("name") == "kubernetes" and meta.get("namespace") == "default":
            return str(self.service_net[1])
        used = {s.get("spec", {}).get("clusterIP") for s in self.store.list(SERVICES)[0]}
        for host in list(self.service_net.hosts())[10:]:
            if str(host) not in used:
                return str(host)
        raise ApiError(500, "InternalError", "no service addresses left")

    def _csr(self, obj: Obj, user: auth.User | None) -> None:
        """The requester goes into the spec; kubelet client CSRs are approved by the
        csrapproving rules and signed at once (the real controllers act within a second)."""
        spec = obj.setdefault("spec", {})
        if user is not None:
            spec["username"], spec["groups"] = user.name, list(user.groups)
            if user.uid:
                spec["uid"] = user.uid
        obj.pop("status", None)
        if spec.get("signerName") == certificates.KUBELET_SIGNER:
            certificates.check_kubelet_request(spec)
            certificates.auto_approve(self, obj)
            certificates.sign(self, obj)

    def update(self, kind: Kind, obj: Obj, namespace: str, name: str, sub: str = "",
               user: auth.User | None = None, manager: str = "", dry_run: bool = False) -> Obj:
        """PUT (also the tail of every PATCH): status writes change only status."""
        with self.lock:
            live = self.store.get(kind, namespace if kind.namespaced else "", name)
            obj.setdefault("metadata", {})
            if obj["metadata"].get("name", name) != name:
                raise ApiError(400, "BadRequest", "the name of the object "
                               f"({obj['metadata'].get('name')}) does not match the name on "
                               f"the URL ({name})")
            new = self._merge_for_update(kind, live, obj, sub)
            self._known_fields(kind, new)
            defaults.apply(kind.kind, new)
            admission.node_restriction(user, "update", kind, name, sub, new, live)
            if kind.kind == "Service":
                self._allocate(new, live)
            validate.check(kind.kind, new, live)
            if kind.kind == "CertificateSigningRequest" and sub == "approval":
                certificates.sign(self, new)
            patch.record_update(live, new, manager)
            return self.store.update(kind, new, dry_run=dry_run)

    @staticmethod
    def _merge_for_update(kind: Kind, live: Obj, obj: Obj, sub: str) -> Obj:
        rv = obj["metadata"].get("resourceVersion")
        if sub in ("status", "approval", "finalize"):
            new = copy.deepcopy(live)
            if sub == "finalize":
                new.setdefault("spec", {})["finalizers"] = (obj.get("spec") or {}).get(
                    "finalizers") or []
            elif sub == "approval":
                new.setdefault("status", {})["conditions"] = (obj.get("status") or {}).get(
                    "conditions") or []
            else:
                new["status"] = obj.get("status", {})
        else:
            new = copy.deepcopy(obj)
            new["metadata"] = dict(obj["metadata"], name=live["metadata"]["name"])
            for key in ("uid", "creationTimestamp", "generation"):
                if key in live["metadata"]:
                    new["metadata"][key] = live["metadata"][key]
            if kind.namespaced:
                new["metadata"]["namespace"] = live["metadata"]["namespace"]
            if "status" in kind.subresources:
                new["status"] = copy.deepcopy(live.get("status", {}))
                if kind.kind == "CertificateSigningRequest":
                    new["spec"] = copy.deepcopy(live.get("spec"))
        new["metadata"]["resourceVersion"] = rv or live["metadata"]["resourceVersion"]
        return new

    def patch(self, kind: Kind, namespace: str, name: str, sub: str, content_type: str,
              body: bytes, applier: str, force: bool, user: auth.User | None, manager: str,
              dry_run: bool = False) -> tuple[int, Obj]:
        """PATCH in its four flavours; apply creates when the object is missing."""
        ns = namespace if kind.namespaced else ""
        media_type = content_type.split(";")[0].strip().lower()
        if media_type == "application/apply-patch+yaml":
            applied = media.parse_document(body)
            self._known_fields(kind, applied)
            if not applier:
                raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: "
                               "fieldManager: Required value: is required for apply patch")
            with self.lock:
                live = self.store.find(kind, ns, name)
                try:
                    merged = patch.apply(live, applied, applier, force=force)
                except patch.ApplyConflict as clash:
                    raise conflict_error(clash) from None
                merged.setdefault("metadata", {})["name"] = name
                if live is None:
                    if sub:
                        raise not_found(kind, name)
                    return 201, self.create(kind, merged, namespace, user, "", dry_run)
                merged["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
                return 200, self.update(kind, merged, namespace, name, sub, user, "", dry_run)
        with self.lock:
            live = self.store.get(kind, ns, name)
            return 200, self.update(kind, patched(live, media_type, body), namespace, name, sub,
                                    user, manager, dry_run)

    def delete(self, kind: Kind, namespace: str, name: str, options: Obj,
               user: auth.User | None = None, dry_run: bool = False) -> Obj:
        """DELETE: at once (no grace periods or finalizers); dependents go too unless orphaned."""
        with self.lock:
            live = self.store.get(kind, namespace, name)
            admission.node_restriction(user, "delete", kind, name, "", None, live)
            pre = options.get("preconditions") or {}
            if kind.kind == "Namespace" and not dry_run:
                self._empty_namespace(name)
            gone = self.store.delete(kind, namespace, name, dry_run, pre.get("uid", ""),
                                     pre.get("resourceVersion", ""))
            if not dry_run:
                self._collect(gone, options)
        if kind.kind in RETURNS_DELETED:
            if kind.kind == "Namespace":
                gone.setdefault("status", {})["phase"] = "Terminating"
            return gone
        return success(kind, gone)

    def delete_collection(self, kind: Kind, namespace: str, labels: str, fields: str,
                          user: auth.User | None, dry_run: bool) -> Obj:
        """DELETE on a collection: every matching object; the List of what went."""
        items = self.store.list(kind, namespace, labels, fields)[0]
        gone = []
        for obj in items:
            try:
                self.delete(kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"],
                            {}, user, dry_run)
                gone.append(obj)
            except ApiError as err:
                if err.code != 404:
                    raise
        return {"kind": f"{kind.kind}List", "apiVersion": kind.api_version,
                "metadata": {"resourceVersion": self.store.list(kind, namespace)[1]},
                "items": gone}

    def _empty_namespace(self, name: str) -> None:
        """The namespace controller's work, done at once."""
        for kind in resources.KINDS:
            if kind.namespaced and kind.stored:
                for obj in self.store.list(kind, name)[0]:
                    self.store.delete(kind, name, obj["metadata"]["name"])

    def _collect(self, owner: Obj, options: Obj) -> None:
        """The garbage collector: dependents of a deleted owner go (Background and Foreground
        alike, at once) or lose the reference (Orphan)."""
        uid = owner["metadata"]["uid"]
        orphan = options.get("propagationPolicy") == "Orphan" or \
            options.get("orphanDependents") is True
        for kind in resources.KINDS:
            if not kind.stored:
                continue
            for obj in self.store.list(kind)[0]:
                refs = obj["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == uid for r in refs):
                    continue
                meta = obj["metadata"]
                ns = meta.get("namespace", "") if kind.namespaced else ""
                rest = [r for r in refs if r.get("uid") != uid]
                if orphan or rest:
                    meta["ownerReferences"] = rest
                    if not rest:
                        meta.pop("ownerReferences")
                    self.store.update(kind, obj, check_rv=False)
                else:
                    self.store.delete(kind, ns, meta["name"])
                    self._collect(obj, options)

    # ---- subresources ----
    def evict(self, namespace: str, name: str, eviction: Obj, user: auth.User | None,
              dry_run: bool) -> Obj:
        """`pods/NAME/eviction`: the pod goes (no PodDisruptionBudget is served to stop it)."""
        target = (eviction.get("metadata") or {}).get("name", name)
        if target != name:
            raise ApiError(400, "BadRequest", f"name in URL does not match name in Eviction "
                           f"object ({name} != {target})")
        with self.lock:
            pod = self.store.get(PODS, namespace, name)
            admission.node_restriction(user, "create", PODS, name, "eviction", None, pod)
            options = eviction.get("deleteOptions") or {}
            pre = options.get("preconditions") or {}
            self.store.delete(PODS, namespace, name, dry_run, pre.get("uid", ""),
                              pre.get("resourceVersion", ""))
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "code": 201}

    def scale(self, kind: Kind, namespace: str, name: str) -> Obj:
        """`.../NAME/scale`: the autoscaling/v1 Scale of a Deployment or ReplicaSet."""
        obj = self.store.get(kind, namespace, name)
        meta = obj["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                   "creationTimestamp") if k in meta},
                "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                           "selector": selector_text((obj.get("spec") or {}).get("selector"))}}

    def set_scale(self, kind: Kind, namespace: str, name: str, scale: Obj,
                  user: auth.User | None, manager: str, dry_run: bool) -> Obj:
        """PUT a Scale: the object's `spec.replicas` changes, nothing else."""
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: '
                           f"spec.replicas: Invalid value: {replicas}: must be greater than or "
                           "equal to 0")
        with self.lock:
            obj = self.store.get(kind, namespace, name)
            rv = (scale.get("metadata") or {}).get("resourceVersion")
            if rv:
                obj["metadata"]["resourceVersion"] = rv
            obj["spec"]["replicas"] = replicas
            updated = self.update(kind, obj, namespace, name, "", user, manager, dry_run)
        out = self.scale(kind, namespace, name)
        out["spec"]["replicas"] = updated["spec"]["replicas"]
        return out

    def patch_scale(self, kind: Kind, namespace: str, name: str, content_type: str,
                    body: bytes, user: auth.User | None, manager: str, dry_run: bool) -> Obj:
        """PATCH a Scale (`kubectl scale` sends a merge patch of spec.replicas)."""
        with self.lock:
            current = self.scale(kind, namespace, name)
            media_type = content_type.split(";")[0].strip().lower()
            new = patched(current, media_type, body)
            return self.set_scale(kind, namespace, name, new, user, manager, dry_run)

    def sign_cluster_info(self, cm: Obj) -> Obj:
        """The bootstrap signer: one detached JWS of the kubeconfig per signing token."""
        data = {k: v for k, v in (cm.get("data") or {}).items()
                if not k.startswith("jws-kubeconfig-")}
        payload = data.get("kubeconfig", "")
        for secret in self.store.list(auth.SECRETS, "kube-system")[0]:
            name = secret["metadata"]["name"]
            if not name.startswith("bootstrap-token-"):
                continue
            token = auth.bootstrap_token(self.store, name.removeprefix("bootstrap-token-"))
            if token and token["usage-bootstrap-signing"] == "true":
                data[f"jws-kubeconfig-{token['token-id']}"] = detached_jws(
                    payload, token["token-id"], token["token-secret"])
        return dict(cm, data=data)

    def token_request(self, namespace: str, name: str, body: Obj, dry_run: bool = False,
                      user: auth.User | None = None) -> Obj:
        """`serviceaccounts/NAME/token`: a signed, expiring JWT for the ServiceAccount."""
        account = self.store.get(SERVICE_ACCOUNTS, namespace, name)
        spec = dict(body.get("spec") or {})
        seconds = int(spec.get("expirationSeconds") or 3600)
        if seconds < 600:
            raise ApiError(422, "Invalid", "TokenRequest.authentication.k8s.io \"" + name +
                           "\" is invalid: spec.expirationSeconds: Invalid value: "
                           f"{seconds}: may not specify a duration less than 10 minutes")
        bound = spec.get("boundObjectRef") or {}
        pod = self.store.find(PODS, namespace, bound.get("name", "")) \
            if bound.get("kind") == "Pod" else None
        admission.token_for_node(user, SERVICE_ACCOUNTS, name, pod)
        now = int(time.time())
        claims: Obj = {"iss": auth.ISSUER, "sub": f"system:serviceaccount:{namespace}:{name}",
                       "aud": spec.get("audiences") or [auth.ISSUER], "iat": now, "nbf": now,
                       "exp": now + seconds, "jti": str(uuid.uuid4()),
                       "kubernetes.io": {"namespace": namespace, "serviceaccount": {
                           "name": name, "uid": account["metadata"]["uid"]}}}
        if pod is not None:
            claims["kubernetes.io"]["pod"] = {"name": pod["metadata"]["name"],
                                              "uid": pod["metadata"]["uid"]}
        token = sign_jwt(claims, self.sa_key)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + seconds))
        spec["expirationSeconds"] = seconds
        spec.setdefault("audiences", claims["aud"])
        return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": namespace,
                             "creationTimestamp": now_stamp()},
                "spec": spec, "status": {"token": token, "expirationTimestamp": expires}}


def patched(live: Obj, media_type: str, body: bytes) -> Obj:
    """`live` with a merge, strategic merge or JSON patch applied."""
    if media_type == "application/json-patch+json":
        try:
            operations = json.loads(body or b"[]")
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, "BadRequest", f"error decoding patch: {exc}") from None
        try:
            out = patch.json_patch(live, operations)
        except patch.PatchError as exc:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error "
                           f"in our request: {exc}") from None
        if not isinstance(out, dict):
            raise ApiError(422, "Invalid", "the patch does not leave an object")
        return out
    if media_type not in ("application/merge-patch+json",
                          "application/strategic-merge-patch+json"):
        raise ApiError(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media "
                       "types include: application/json-patch+json, application/merge-patch"
                       "+json, application/apply-patch+yaml, application/strategic-merge-patch"
                       f"+json (sandbox stand-in; got {media_type or 'none'})")
    doc = media.parse_document(body, yaml_allowed=False)
    if media_type == "application/merge-patch+json":
        return patch.merge_patch(live, doc)
    return patch.strategic_merge(live, doc)


def _qos(spec: Obj) -> str:
    containers = spec.get("containers") or []
    resources_ = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources_):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(k) and (r.get("requests") or r.get("limits") or {}).get(k)
        == (r.get("limits") or {}).get(k) for r in resources_ for k in ("cpu", "memory"))
    return "Guaranteed" if guaranteed else "Burstable"


def _job_labels(obj: Obj, uid: str) -> None:
    """The Job registry's selector and pod labels, keyed by the Job's own uid."""
    spec = obj["spec"]
    name = obj["metadata"].get("name", "")
    if spec.get("manualSelector"):
        return
    labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
              "controller-uid": uid, "job-name": name}
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    if not obj["metadata"].get("labels"):
        obj["metadata"]["labels"] = dict(template["metadata"]["labels"])


def aggregate_roles(store: Store) -> None:
    """The clusterrole-aggregation controller: an aggregated role's rules are the union of the
    rules of the roles its selectors pick."""
    roles = store.list(CLUSTER_ROLES)[0]
    for role in roles:
        selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
        if not selectors:
            continue
        rules: list[Obj] = []
        for other in roles:
            if other["metadata"]["name"] == role["metadata"]["name"]:
                continue
            labels = other["metadata"].get("labels") or {}
            if any(label_match(",".join(f"{k}={v}" for k, v in (s.get("matchLabels") or {})
                                        .items()), labels) for s in selectors):
                rules += [r for r in other.get("rules") or [] if r not in rules]
        if rules != (role.get("rules") or []):
            role["rules"] = rules
            store.update(CLUSTER_ROLES, role, check_rv=False)


def conflict_error(clash: patch.ApplyConflict) -> ApiError:
    """The 409 the real server answers to a conflicting apply, with one cause per field."""
    items = clash.conflicts
    if len(items) == 1:
        manager, version, field = items[0]
        message = f'Apply failed with 1 conflict: conflict with "{manager}" using {version}: ' \
                  f"{field}"
    else:
        message = f"Apply failed with {len(items)} conflicts: " + "; ".join(
            f'conflict with "{m}" using {v}: {f}' for m, v, f in items)
    causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using {v}',
               "field": f} for m, v, f in items]
    return ApiError(409, "Conflict", message, {"causes": causes})

