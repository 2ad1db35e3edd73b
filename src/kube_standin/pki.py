"""The cluster PKI: CA, serving and client certificates, kubeconfigs, tokens, CA hash.

Written against the API of Debian bookworm's python3-cryptography (38), which newer releases keep.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_YEARS = 10
LEAF_DAYS = 365
TOKEN_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class Pair:
    """A certificate and its private key, both PEM."""

    cert: bytes
    key: bytes


def new_key() -> rsa.RSAPrivateKey:
    """An RSA-2048 key, kubeadm's default algorithm."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """PEM of a private key in the traditional form kubeadm writes."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _name(cn: str, orgs: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    """PEM SubjectPublicKeyInfo of a key (the service-account verification key)."""
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def make_ca(cn: str = "kubernetes") -> Pair:
    """A self-signed cluster CA valid for ten years, as kubeadm makes."""
    key = new_key()
    now = _now()
    cert = (
        _builder(_name(cn), _name(cn), key.public_key(), now, 365 * CA_YEARS, ca=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Pair(cert.public_bytes(serialization.Encoding.PEM), key_pem(key))


def _builder(subject: x509.Name, issuer: x509.Name, public_key: Any, now: dt.datetime,
             days: int, *, ca: bool) -> x509.CertificateBuilder:
    """What CA and leaf certificates share: validity (from five minutes ago, for clock skew
    between nodes), basic constraints and key usage."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )


def issue(
    ca: Pair,
    cn: str,
    *,
    orgs: Sequence[str] = (),
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    server: bool = False,
    client: bool = False,
    public_key: Any = None,
) -> Pair:
    """A leaf certificate signed by `ca`. With `public_key` the key is the caller's (a CSR's)
    and the returned Pair has an empty key."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = None if public_key is not None else new_key()
    pub = public_key if public_key is not None else key.public_key()  # type: ignore[union-attr]
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    now = _now()
    builder = (
        _builder(_name(cn, orgs), ca_cert.subject, pub, now, LEAF_DAYS, ca=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Pair(
        cert.public_bytes(serialization.Encoding.PEM), key_pem(key) if key is not None else b""
    )


def ca_hash(ca_cert_pem: bytes) -> str:
    """The discovery hash: SHA-256 of the CA's DER SubjectPublicKeyInfo (facts.md section 3)."""
    cert = x509.load_pem_x509_certificate(ca_cert_pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def subject_of(cert_pem: bytes) -> tuple[str, list[str]]:
    """(common name, organisations) of a certificate: the user and groups it authenticates."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    cn = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return (cn[0] if cn else "", orgs)


def new_token() -> str:
    """A bootstrap token `[a-z0-9]{6}.[a-z0-9]{16}`."""
    part = lambda n: "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(n))  # noqa: E731
    return f"{part(6)}.{part(16)}"


def kubeconfig(
    server: str,
    ca_cert: bytes,
    user: str,
    *,
    cert: bytes = b"",
    key: bytes = b"",
    token: str = "",
    cluster: str = "kubernetes",
) -> str:
    """A kubeconfig in kubeadm's shape: cluster `kubernetes`, context `USER@kubernetes`."""
    import base64

    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    creds: dict[str, str] = {}
    if cert:
        creds["client-certificate-data"] = b64(cert)
        creds["client-key-data"] = b64(key)
    if token:
        creds["token"] = token
    context = f"{user}@{cluster}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster, "cluster": {"certificate-authority-data": b64(ca_cert),
                                          "server": server}}
        ],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
        "preferences": {},
        "users": [{"name": user, "user": creds}] if creds else [],
    }
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass(frozen=True)
class Credentials:
    """What a kubeconfig's current context holds."""

    server: str
    ca: bytes
    cert: bytes
    key: bytes
    token: str


def read_kubeconfig(text: str) -> Credentials:
    """The current context's server, CA, client cert/key and token from a kubeconfig."""
    import base64

    doc = yaml.safe_load(text)
    ctx_name = doc.get("current-context")
    ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
    users = [u["user"] for u in doc.get("users") or [] if u["name"] == ctx.get("user")]
    user = users[0] if users else {}
    dec = lambda k, d: base64.b64decode(d[k]) if k in d else b""  # noqa: E731
    return Credentials(str(cluster["server"]), dec("certificate-authority-data", cluster),
                       dec("client-certificate-data", user), dec("client-key-data", user),
                       str(user.get("token", "")))


def subject_of_csr(request: x509.CertificateSigningRequest) -> tuple[str, list[str]]:
    """(common name, organisations) requested by a CSR."""
    cn = [str(a.value) for a in request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [str(a.value) for a in request.subject.get_attributes_for_oid(
        NameOID.ORGANIZATION_NAME)]
    return (cn[0] if cn else "", orgs)


def make_csr(cn: str, orgs: Sequence[str]) -> tuple[bytes, bytes]:
    """(CSR PEM, key PEM) for a client certificate, as the kubelet's TLS bootstrap makes."""
    key = new_key()
    csr = x509.CertificateSigningRequestBuilder().subject_name(_name(cn, orgs)).sign(
        key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM), key_pem(key)


def reissue(ca: Pair, cert_pem: bytes) -> Pair:
    """A new key and certificate with the subject, names and usages of `cert_pem`, valid for
    another year from now (what `kubeadm certs renew` makes)."""
    old = x509.load_pem_x509_certificate(cert_pem)
    cn, orgs = subject_of(cert_pem)
    try:
        sans = old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = sans.get_values_for_type(x509.DNSName)
        ips = [str(i) for i in sans.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns, ips = [], []
    try:
        usages = list(old.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = []
    return issue(ca, cn, orgs=orgs, dns=dns, ips=ips,
                 server=ExtendedKeyUsageOID.SERVER_AUTH in usages,
                 client=ExtendedKeyUsageOID.CLIENT_AUTH in usages)


def not_after(cert_pem: bytes) -> dt.datetime:
    """When a certificate expires (UTC)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    utc = getattr(cert, "not_valid_after_utc", None)  # cryptography 42+; Debian 12 has 38
    return utc if isinstance(utc, dt.datetime) else cert.not_valid_after.replace(tzinfo=dt.UTC)
