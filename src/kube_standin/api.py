"""The API server stand-in's verbs, defaulting, CSR signing and tokens, apart from HTTP."""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import threading
import time
import uuid
from pathlib import Path

import yaml
from cryptography import x509

from . import auth, nodelifecycle, patch, pki, resources
from .jws import detached_jws, sign_jwt
from .paths import BANNER, git_version
from .resources import Kind
from .store import ApiError, Obj, Store, not_found, now_stamp

NS = resources.must("", "v1", "namespaces")
SA = resources.must("", "v1", "serviceaccounts")
SERVICES = resources.must("", "v1", "services")
CSR = resources.must("certificates.k8s.io", "v1", "certificatesigningrequests")
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def version_info() -> Obj:
    """`/version`. gitVersion keeps the real shape for kubectl; the rest says what this is."""
    v = git_version()
    major, minor = v[1:].split(".")[:2]
    return {"major": major, "minor": minor, "gitVersion": v,
            "gitCommit": "sandbox-standin", "gitTreeState": "clean",
            "buildDate": "1970-01-01T00:00:00Z", "goVersion": "none (" + BANNER + ")",
            "compiler": "python3", "platform": "linux/sandbox-standin",
            "emulationMajor": major, "emulationMinor": minor}


class ApiServer:
    """The state and verbs of the API, independent of HTTP."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.store = Store(Path(args.state_file) if args.state_file else None)
        self.ca = pki.Pair(Path(args.client_ca_file).read_bytes(),
                           Path(args.cluster_signing_key_file).read_bytes()
                           if args.cluster_signing_key_file else b"")
        self.sa_key = (Path(args.service_account_signing_key_file).read_bytes()
                       if args.service_account_signing_key_file else b"")
        self.sa_pub = (Path(args.service_account_key_file).read_bytes()
                       if args.service_account_key_file else b"")
        self.service_net = ipaddress.ip_network(args.service_cluster_ip_range.split(",")[0])
        self.cluster_cidr = args.cluster_cidr or ""
        self.address = f"{args.advertise_address}:{args.secure_port}"
        self.lock = threading.RLock()
        nodelifecycle.configure(getattr(args, "default_not_ready_toleration_seconds", 300),
                                getattr(args, "default_unreachable_toleration_seconds", 300))
        self._bootstrap()

    # ---- start-up objects the real server creates itself ----
    def _bootstrap(self) -> None:
        for name in SYSTEM_NAMESPACES:
            if self.store.find(NS, "", name) is None:
                self.create(NS, {"metadata": {"name": name}}, "")
        if self.store.find(SERVICES, "default", "kubernetes") is None:
            self.create(SERVICES, {"metadata": {"name": "kubernetes", "namespace": "default",
                                                "labels": {"component": "apiserver",
                                                           "provider": "kubernetes"}},
                                   "spec": {"type": "ClusterIP", "ports": [
                                       {"name": "https", "port": 443, "protocol": "TCP",
                                        "targetPort": self.args.secure_port}]}}, "default")
        rbac = "rbac.authorization.k8s.io/v1"
        cr, crb = resources.by_kind(rbac, "ClusterRole"), resources.by_kind(rbac,
                                                                             "ClusterRoleBinding")
        assert cr and crb
        readable = sorted({k.plural for k in resources.KINDS if k.plural != "secrets"})
        roles = {
            "cluster-admin": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                              {"nonResourceURLs": ["*"], "verbs": ["*"]}],
            "view": [{"apiGroups": sorted(resources.GROUPS), "resources": readable,
                      "verbs": ["get", "list", "watch"]}],
            "system:public-info-viewer": [{"nonResourceURLs": ["/healthz", "/livez", "/readyz",
                                                               "/version", "/version/"],
                                           "verbs": ["get"]}],
        }
        for name, rules in roles.items():
            if self.store.find(cr, "", name) is None:
                self.store.create(cr, {"metadata": {"name": name, "labels": {
                    "kubernetes.io/bootstrapping": "rbac-defaults"}}, "rules": rules})
        if self.store.find(crb, "", "cluster-admin") is None:
            self.store.create(crb, {
                "metadata": {"name": "cluster-admin"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "cluster-admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                              "name": "system:masters"}]})

    # ---- verbs ----
    def _defaults(self, kind: Kind, obj: Obj, namespace: str) -> None:
        meta = obj.setdefault("metadata", {})
        if kind.namespaced:
            meta["namespace"] = namespace or meta.get("namespace") or "default"
            if self.store.find(NS, "", meta["namespace"]) is None:
                raise ApiError(404, "NotFound", f'namespaces "{meta["namespace"]}" not found',
                               {"name": meta["namespace"], "kind": "namespaces"})
        if kind.kind == "Namespace":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        elif kind.kind == "Service":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            if spec.get("clusterIP") != "None" and not spec.get("clusterIP"):
                spec["clusterIP"] = self._next_service_ip(meta)
            spec["clusterIPs"] = [spec["clusterIP"]]
            obj.setdefault("status", {"loadBalancer": {}})
        elif kind.kind == "Pod":
            obj.setdefault("spec", {}).setdefault("restartPolicy", "Always")
            nodelifecycle.default_tolerations(obj["spec"])  # DefaultTolerationSeconds
            obj.setdefault("status", {"phase": "Pending"})
        elif kind.kind == "DaemonSet":
            # The integer fields the real server always writes (typed clients require them).
            obj["status"] = dict.fromkeys(("currentNumberScheduled", "numberMisscheduled",
                                           "desiredNumberScheduled", "numberReady"), 0)
        elif kind.kind == "Deployment":
            obj["status"] = {}

    def _next_service_ip(self, meta: Obj) -> str:
        if meta.get("name") == "kubernetes" and meta.get("namespace") == "default":
            return str(self.service_net[1])
        used = {s.get("spec", {}).get("clusterIP") for s in self.store.list(SERVICES)[0]}
        for host in list(self.service_net.hosts())[10:]:
            if str(host) not in used:
                return str(host)
        raise ApiError(500, "InternalError", "no service addresses left")

    def create(self, kind: Kind, obj: Obj, namespace: str, user: auth.User | None = None,
               manager: str = "") -> Obj:
        """POST: create, with the real server's defaulting; `manager` owns the fields."""
        obj = dict(obj)
        self._defaults(kind, obj, namespace)
        if kind.kind == "CertificateSigningRequest":
            self._csr(obj, user)
        patch.record_update(None, obj, manager)
        created = self.store.create(kind, obj)
        if kind.kind == "Namespace":
            self.store.create(SA, {"metadata": {"name": "default", "namespace": created[
                "metadata"]["name"]}})
        return created

    def _csr(self, obj: Obj, user: auth.User | None) -> None:
        """Approve and sign kubelet client CSRs at once, as kubeadm's auto-approval RBAC and
        the controller-manager's signer do together."""
        spec = obj.setdefault("spec", {})
        if user is not None:
            spec["username"], spec["groups"] = user.name, list(user.groups)
        if spec.get("signerName") != "kubernetes.io/kube-apiserver-client-kubelet":
            return
        request = x509.load_pem_x509_csr(base64.b64decode(spec["request"]))
        cn, orgs = pki.subject_of_csr(request)
        if not cn.startswith("system:node:") or orgs != ["system:nodes"]:
            raise ApiError(422, "Invalid", "CertificateSigningRequest is invalid: spec.request: "
                           "kubelet client certificates need CN system:node:<name> and "
                           "O system:nodes")
        pub = request.public_key()
        signed = pki.issue(self.ca, cn, orgs=orgs, client=True, public_key=pub)
        obj["status"] = {
            "conditions": [{"type": "Approved", "status": "True", "reason": "AutoApproved",
                            "message": "Auto approving kubelet client certificate after "
                                       "SubjectAccessReview.", "lastUpdateTime": now_stamp()}],
            "certificate": base64.b64encode(signed.cert).decode()}

    def update(self, kind: Kind, obj: Obj, namespace: str, name: str, sub: str,
               manager: str = "") -> Obj:
        """PUT (also the tail of every PATCH): status writes change only status."""
        live = self.store.get(kind, namespace if kind.namespaced else "", name)
        obj.setdefault("metadata", {})
        if obj["metadata"].get("name", name) != name:
            raise ApiError(400, "BadRequest", "the name of the object "
                           f"({obj['metadata'].get('name')}) does not match the name on the URL "
                           f"({name})")
        if sub == "status":
            new = dict(live)
            new["status"] = obj.get("status", {})
            new["metadata"] = dict(live["metadata"])
            if obj["metadata"].get("resourceVersion"):
                new["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
        else:
            new = dict(obj)
            new["metadata"] = dict(obj["metadata"], name=name)
            if kind.namespaced:
                new["metadata"]["namespace"] = live["metadata"]["namespace"]
            if "status" in live and kind.subresources and "status" in kind.subresources:
                new["status"] = live["status"]
        patch.record_update(live, new, manager)
        return self.store.update(kind, new)

    def patch(self, kind: Kind, namespace: str, name: str, sub: str, content_type: str,
              body: bytes, query: dict[str, str], user: auth.User | None,
              manager: str = "") -> tuple[int, Obj]:
        """PATCH in its three flavours; apply creates when the object is missing."""
        ns = namespace if kind.namespaced else ""
        if content_type.startswith("application/apply-patch"):
            applied = yaml.safe_load(body.decode() or "{}")
            if not isinstance(applied, dict):
                raise ApiError(400, "BadRequest", "apply patch must be an object")
            applier = query.get("fieldManager")
            if not applier:
                raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: "
                               "fieldManager: Required value: is required for apply patch")
            with self.lock:
                live = self.store.find(kind, ns, name)
                try:
                    merged = patch.apply(live, applied, applier,
                                         force=query.get("force") in ("true", "1"))
                except patch.ApplyConflict as clash:
                    raise conflict_error(clash) from None
                merged.setdefault("metadata", {})["name"] = name
                if live is None:
                    if sub:
                        raise not_found(kind, name)
                    return 201, self.create(kind, merged, namespace, user)
                merged["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
                return 200, self.update(kind, merged, namespace, name, sub)
        try:
            doc = json.loads(body or b"{}")
        except json.JSONDecodeError as exc:
            raise ApiError(400, "BadRequest", f"error decoding patch: {exc}") from None
        with self.lock:
            live = self.store.get(kind, ns, name)
            if content_type.startswith("application/merge-patch+json"):
                new = patch.merge_patch(live, doc)
            elif content_type.startswith("application/strategic-merge-patch+json"):
                new = patch.strategic_merge(live, doc)
            elif content_type.startswith("application/json-patch+json"):
                raise ApiError(415, "UnsupportedMediaType",
                               "the sandbox stand-in does not implement JSON patch (RFC 6902)")
            else:
                raise ApiError(415, "UnsupportedMediaType",
                               f"the body of the request was in an unknown format - accepted "
                               f"media types include: application/json-patch+json, "
                               f"application/merge-patch+json, application/apply-patch+yaml, "
                               f"application/strategic-merge-patch+json; got {content_type}")
            return 200, self.update(kind, new, namespace, name, sub, manager)

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

    def token_request(self, namespace: str, name: str, body: Obj) -> Obj:
        """`serviceaccounts/NAME/token`: a signed, expiring JWT for the ServiceAccount."""
        account = self.store.get(SA, namespace, name)
        spec = dict(body.get("spec") or {})
        seconds = int(spec.get("expirationSeconds") or 3600)
        if seconds < 600:
            raise ApiError(422, "Invalid", "TokenRequest.authentication.k8s.io \"" + name +
                           "\" is invalid: spec.expirationSeconds: Invalid value: "
                           f"{seconds}: may not specify a duration less than 10 minutes")
        now = int(time.time())
        claims = {"iss": auth.ISSUER, "sub": f"system:serviceaccount:{namespace}:{name}",
                  "aud": spec.get("audiences") or [auth.ISSUER], "iat": now, "nbf": now,
                  "exp": now + seconds, "jti": str(uuid.uuid4()),
                  "kubernetes.io": {"namespace": namespace, "serviceaccount": {
                      "name": name, "uid": account["metadata"]["uid"]}}}
        token = sign_jwt(claims, self.sa_key)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + seconds))
        spec["expirationSeconds"] = seconds
        spec.setdefault("audiences", claims["aud"])
        return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": namespace,
                             "creationTimestamp": now_stamp()},
                "spec": spec, "status": {"token": token, "expirationTimestamp": expires}}



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
