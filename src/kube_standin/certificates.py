"""CertificateSigningRequests: the controller-manager's kubelet-client approver and its signer.

The approver (csrapproving) approves a kubelet client CSR only when the requester may create
`certificatesigningrequests/nodeclient` (a bootstrap token asking for a node) or, for a node
renewing its own certificate, `certificatesigningrequests/selfnodeclient`; kubeadm binds those
to the bootstrap token's group and to `system:nodes`. The certificate then carries only
`system:node:NAME` in `system:nodes`: what the Node authorizer lets a kubelet do, nothing more.
The signer signs approved CSRs of the kube-apiserver-client signers with the cluster CA.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from cryptography import x509

from . import pki
from .auth import Attributes, User
from .store import ApiError, Obj, now_stamp

if TYPE_CHECKING:
    from .api import ApiServer

KUBELET_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
KUBELET_USAGES = {"digital signature", "key encipherment", "client auth"}


def _condition(obj: Obj, kind: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind and c.get("status", "True") == "True":
            return c
    return None


def check_kubelet_request(spec: Obj) -> tuple[str, list[str]]:
    """CN and O of a kubelet client CSR; 422 if it is not one."""
    try:
        request = x509.load_pem_x509_csr(base64.b64decode(spec.get("request") or ""))
    except ValueError:
        raise ApiError(422, "Invalid", "CertificateSigningRequest is invalid: spec.request: "
                       "Invalid value: []byte{...}: PEM block type must be CERTIFICATE "
                       "REQUEST") from None
    cn, orgs = pki.subject_of_csr(request)
    if not cn.startswith("system:node:") or orgs != ["system:nodes"]:
        raise ApiError(422, "Invalid", "CertificateSigningRequest is invalid: spec.request: "
                       "Invalid value: kubelet client certificates need CN system:node:<name> "
                       "and O system:nodes")
    return cn, orgs


def auto_approve(api: ApiServer, csr: Obj) -> None:
    """Approve a kubelet client CSR if its requester may have it approved (csrapproving)."""
    spec = csr.get("spec") or {}
    if spec.get("signerName") != KUBELET_SIGNER or _condition(csr, "Approved") or \
            _condition(csr, "Denied"):
        return
    cn, _ = check_kubelet_request(spec)
    if not set(spec.get("usages") or []) <= KUBELET_USAGES or "client auth" not in (
            spec.get("usages") or []):
        return
    requester = User(spec.get("username", ""), tuple(spec.get("groups") or []))
    sub = "selfnodeclient" if requester.name == cn else "nodeclient"
    allowed, _ = api.authorizer.decide(requester, Attributes(
        "create", "certificates.k8s.io", "certificatesigningrequests", sub))
    if not allowed:
        return
    now = now_stamp()
    status = csr.setdefault("status", {})
    status.setdefault("conditions", []).append({
        "type": "Approved", "status": "True", "reason": "AutoApproved",
        "message": "Auto approving kubelet client certificate after SubjectAccessReview.",
        "lastUpdateTime": now, "lastTransitionTime": now})


def sign(api: ApiServer, csr: Obj) -> bool:
    """Issue the certificate of an approved client CSR; False when there is nothing to do."""
    spec, status = csr.get("spec") or {}, csr.setdefault("status", {})
    if status.get("certificate") or not _condition(csr, "Approved") or _condition(
            csr, "Denied") or spec.get("signerName") not in (KUBELET_SIGNER, CLIENT_SIGNER):
        return False
    if not api.ca.key:
        return False
    request = x509.load_pem_x509_csr(base64.b64decode(spec["request"]))
    cn, orgs = pki.subject_of_csr(request)
    signed = pki.issue(api.ca, cn, orgs=orgs, client=True, public_key=request.public_key())
    status["certificate"] = base64.b64encode(signed.cert).decode()
    return True
