"""The API server stand-in: HTTPS on :6443 with the routes, auth and errors kubectl expects.

`kubeadm init` writes `/etc/kubernetes/manifests/kube-apiserver.yaml` like the real one; the
`kube-apiserver-standin` service reads its flags from that manifest (and the controller-manager's
for the pod CIDR), so the files on the node tell the truth about what runs.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import logging
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from cryptography import x509

from . import auth, controllers, patch, pki, protobuf, resources
from .jws import detached_jws, sign_jwt
from .paths import BANNER, git_version
from .resources import Kind
from .store import ApiError, Obj, Store, now_stamp

log = logging.getLogger("kube-apiserver-standin")
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

    def create(self, kind: Kind, obj: Obj, namespace: str, user: auth.User | None = None) -> Obj:
        """POST: create, with the real server's defaulting."""
        obj = dict(obj)
        self._defaults(kind, obj, namespace)
        if kind.kind == "CertificateSigningRequest":
            self._csr(obj, user)
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

    def update(self, kind: Kind, obj: Obj, namespace: str, name: str, sub: str) -> Obj:
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
        return self.store.update(kind, new)

    def patch(self, kind: Kind, namespace: str, name: str, sub: str, content_type: str,
              body: bytes, query: dict[str, str], user: auth.User | None) -> tuple[int, Obj]:
        """PATCH in its three flavours; apply creates when the object is missing."""
        ns = namespace if kind.namespaced else ""
        if content_type.startswith("application/apply-patch"):
            applied = yaml.safe_load(body.decode() or "{}")
            if not isinstance(applied, dict):
                raise ApiError(400, "BadRequest", "apply patch must be an object")
            manager = query.get("fieldManager")
            if not manager:
                raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: "
                               "fieldManager: Required value: is required for apply patch")
            with self.lock:
                live = self.store.find(kind, ns, name)
                merged = patch.apply(live, applied, manager)
                merged.setdefault("metadata", {})["name"] = name
                if live is None:
                    if sub:
                        raise auth_not_found(kind, name)
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
            return 200, self.update(kind, new, namespace, name, sub)

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


def auth_not_found(kind: Kind, name: str) -> ApiError:
    """NotFound for `kind`/`name`."""
    from .store import not_found

    return not_found(kind, name)


# ---- HTTP ----

class Handler(BaseHTTPRequestHandler):
    """Routes one HTTP request to the ApiServer."""

    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver-standin"
    api: ApiServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _send(self, code: int, obj: Obj | str) -> None:
        raw = (obj if isinstance(obj, str) else json.dumps(obj)).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8" if isinstance(obj, str)
                         else "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(raw)

    def _user(self) -> auth.User:
        subject = None
        cert = self.connection.getpeercert(binary_form=True)
        if cert:
            subject = pki.subject_of(x509.load_der_x509_certificate(cert).public_bytes(
                pki.serialization.Encoding.PEM))
        bearer = self.headers.get("Authorization", "")
        bearer = bearer[7:].strip() if bearer.lower().startswith("bearer ") else ""
        return auth.authenticate(self.api.store, subject, bearer, self.api.sa_pub)

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            if "protobuf" in self.headers.get("Content-Type", ""):
                body = self._from_protobuf(body)
            self._route(method, body)
        except ApiError as err:
            self._send(err.code, err.status())
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as exc:  # the server stays up and answers like the real one
            log.exception("internal error")
            self._send(500, ApiError(500, "InternalError", f"Internal error occurred: {exc}")
                       .status())

    def _from_protobuf(self, body: bytes) -> bytes:
        """kubectl's typed commands send protobuf: decode the kinds they create, as JSON."""
        path = urlsplit(self.path).path.rstrip("/").split("/")
        kind = None
        for k in resources.KINDS:
            if k.plural in path[-3:]:
                kind = k
        wanted = "TokenRequest" if path[-1] == "token" else kind.kind if kind else ""
        try:
            return json.dumps(protobuf.decode(body, wanted)).encode()
        except protobuf.Unsupported as exc:
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an "
                           "unknown format - accepted media types include: application/json, "
                           "application/yaml (sandbox stand-in: protobuf is decoded only for "
                           f"{', '.join(sorted(protobuf.KINDS))}; {exc})") from None

    def _route(self, method: str, body: bytes) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path.rstrip("/") or "/"
        user = self._user()
        segs = [s for s in path.split("/") if s]
        verb = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}[method]
        if path in auth.PUBLIC_PATHS:
            auth.authorize(self.api.store, user, verb, path=path)
            self._send(200, version_info() if path == "/version" else "ok")
            return
        if segs[:2] == ["api", "v1"] and len(segs) > 2:
            group, version, rest = "", "v1", segs[2:]
        elif segs and segs[0] == "apis" and len(segs) > 3:
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            auth.authorize(self.api.store, user, verb, path=path)
            self._discovery(path, segs)
            return
        namespace = ""
        if (len(rest) >= 3 and rest[0] == "namespaces"
                and resources.find(group, version, rest[2]) is not None):
            namespace, rest = rest[1], rest[2:]
        kind = resources.find(group, version, rest[0])
        if kind is None or len(rest) > 3 or (len(rest) == 3 and rest[2] not in kind.subresources):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if method == "GET" and not name:
            verb = "watch" if query.get("watch") in ("1", "true") else "list"
        resource = f"{kind.plural}/{sub}" if sub else kind.plural
        auth.authorize(self.api.store, user, verb, group=group, resource=resource,
                       namespace=namespace, name=name)
        self._resource(method, verb, kind, namespace, name, sub, query, body, user)

    def _discovery(self, path: str, segs: list[str]) -> None:
        doc: Obj | None = None
        if path == "/api":
            doc = resources.api_versions(self.api.address)
        elif path == "/apis":
            doc = resources.api_group_list()
        elif path == "/api/v1":
            doc = resources.resource_list("", "v1")
        elif len(segs) == 2 and segs[0] == "apis":
            doc = resources.api_group(segs[1])
        elif len(segs) == 3 and segs[0] == "apis":
            doc = resources.resource_list(segs[1], segs[2])
        elif path == "/openapi/v3":
            doc = resources.openapi_root()
        elif segs[:3] == ["openapi", "v3", "api"] and segs[3:] == ["v1"]:
            doc = resources.openapi_group_version("", "v1")
        elif segs[:3] == ["openapi", "v3", "apis"] and len(segs) == 5:
            doc = resources.openapi_group_version(segs[3], segs[4])
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        self._send(200, doc)

    def _wants_table(self) -> bool:
        return "as=Table" in self.headers.get("Accept", "")

    def _resource(self, method: str, verb: str, kind: Kind, namespace: str, name: str,
                  sub: str, query: dict[str, str], body: bytes, user: auth.User) -> None:
        api, store = self.api, self.api.store
        ns = namespace if kind.namespaced else ""
        if verb == "list":
            items, rv = store.list(kind, ns, query.get("labelSelector", ""),
                                   query.get("fieldSelector", ""))
            if self._wants_table():
                self._send(200, resources.table(kind.kind, items, rv))
            else:
                self._send(200, {"kind": kind.kind + "List", "apiVersion": kind.api_version,
                                 "metadata": {"resourceVersion": rv}, "items": items})
        elif verb == "watch":
            self._watch(kind, ns, query)
        elif verb == "get":
            obj = store.get(kind, ns, name)
            if kind.kind == "ConfigMap" and (ns, name) == ("kube-public", "cluster-info"):
                obj = api.sign_cluster_info(obj)
            if self._wants_table():
                self._send(200, resources.table(kind.kind, [obj], obj["metadata"][
                    "resourceVersion"]))
            else:
                self._send(200, obj)
        elif method == "POST":
            doc = json.loads(body or b"{}")
            if sub == "token" and kind.kind == "ServiceAccount":
                self._send(201, api.token_request(namespace, name, doc))
            elif name:
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource")
            else:
                self._check_body(kind, doc)
                self._send(201, api.create(kind, doc, namespace, user))
        elif method == "PUT":
            doc = json.loads(body or b"{}")
            self._check_body(kind, doc)
            self._send(200, api.update(kind, doc, namespace, name, sub))
        elif method == "PATCH":
            code, obj = api.patch(kind, namespace, name, sub,
                                  self.headers.get("Content-Type", ""), body, query, user)
            self._send(code, obj)
        elif method == "DELETE":
            obj = store.delete(kind, ns, name)
            if kind.kind == "Namespace":
                controllers.delete_namespace(store, name)
            self._send(200, obj)

    @staticmethod
    def _check_body(kind: Kind, doc: Obj) -> None:
        if doc.get("kind") not in (None, kind.kind) or doc.get("apiVersion") not in (
                None, kind.api_version):
            raise ApiError(400, "BadRequest", f"the API version in the data "
                           f"({doc.get('apiVersion')}) does not match the expected API version "
                           f"({kind.api_version})")

    def _watch(self, kind: Kind, ns: str, query: dict[str, str]) -> None:
        since = query.get("resourceVersion") or ""
        start = int(since) if since.isdigit() and since != "0" else None
        timeout = float(query.get("timeoutSeconds") or 1800)
        table = self._wants_table()
        labels, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")
        initial: list[Obj] = []
        if start is None:
            # No resourceVersion: the real server first sends every object as ADDED.
            initial, rv = self.api.store.list(kind, ns, labels, fields)
            start = int(rv)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        events: Iterator[tuple[str, Obj]] = iter([("ADDED", o) for o in initial])
        try:
            for kind_type, obj in _chain(events, self.api.store.watch(
                    kind, start, ns, labels, fields, timeout)):
                if not kind_type:
                    continue
                if table:
                    obj = resources.table(kind.kind, [obj], obj["metadata"]["resourceVersion"])
                self._chunk(json.dumps({"type": kind_type, "object": obj}).encode() + b"\n")
        except ApiError as err:
            self._chunk(json.dumps({"type": "ERROR", "object": err.status()}).encode() + b"\n")
        self._chunk(b"")
        self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _chain(*its: Iterator[tuple[str, Obj]]) -> Iterator[tuple[str, Obj]]:
    for it in its:
        yield from it


def _manifest_flags(directory: Path) -> list[str]:
    """The flags in the static-pod manifests kubeadm wrote (apiserver, controller-manager)."""
    flags: list[str] = []
    for name in ("kube-apiserver.yaml", "kube-controller-manager.yaml"):
        path = directory / name
        if path.exists():
            pod = yaml.safe_load(path.read_text())
            flags += [a for a in pod["spec"]["containers"][0]["command"][1:]
                      if a.startswith("--")]
    return flags


def parser() -> argparse.ArgumentParser:
    """kube-apiserver's flags that the stand-in honours (plus two controller-manager ones)."""
    ap = argparse.ArgumentParser(prog="kube-apiserver", description=BANNER)
    ap.add_argument("--manifests", help="read flags from kubeadm's static-pod manifests here")
    ap.add_argument("--advertise-address", default="127.0.0.1")
    ap.add_argument("--bind-address", default="0.0.0.0")
    ap.add_argument("--secure-port", type=int, default=6443)
    ap.add_argument("--tls-cert-file")
    ap.add_argument("--tls-private-key-file")
    ap.add_argument("--client-ca-file")
    ap.add_argument("--service-account-key-file")
    ap.add_argument("--service-account-signing-key-file")
    ap.add_argument("--service-cluster-ip-range", default="10.96.0.0/12")
    ap.add_argument("--cluster-cidr", default="")
    ap.add_argument("--cluster-signing-key-file", default="")
    ap.add_argument("--state-file", default="", help="stand-in: where the objects persist")
    ap.add_argument("--node-monitor-grace-period", default="40s")
    return ap


def serve(args: argparse.Namespace, ready: threading.Event | None = None,
          stop: threading.Event | None = None) -> None:
    """Run until `stop` is set (or forever)."""
    api = ApiServer(args)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls_cert_file, args.tls_private_key_file)
    ctx.load_verify_locations(args.client_ca_file)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    handler = type("BoundHandler", (Handler,), {"api": api})
    httpd = ThreadingHTTPServer((args.bind_address, args.secure_port), handler)
    httpd.daemon_threads = True
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    stop = stop or threading.Event()
    grace = float(args.node_monitor_grace_period.rstrip("s"))
    loop = threading.Thread(target=controllers.run, args=(api, stop, grace), daemon=True)
    loop.start()
    server = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                              daemon=True)
    server.start()
    log.info("%s: kube-apiserver %s listening on %s:%s", BANNER, git_version(),
             args.bind_address, args.secure_port)
    if ready is not None:
        ready.set()
    try:
        stop.wait()
    finally:
        httpd.shutdown()
        httpd.server_close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `kube-apiserver-standin` service."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    argv = list(sys.argv[1:] if argv is None else argv)
    first, _ = parser().parse_known_args(argv)
    if first.manifests:
        argv = _manifest_flags(Path(first.manifests)) + argv
    args, _unknown = parser().parse_known_args(argv)
    serve(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
