"""PKI, kubeconfig, tokens and signatures of the Kubernetes stand-in."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from kube_standin import jws, pki


@pytest.fixture(scope="module")
def ca() -> pki.Pair:
    return pki.make_ca()


def test_ca_hash_matches_openssl(ca: pki.Pair, tmp_path: Path) -> None:
    """The discovery hash is what the kubeadm docs compute with openssl."""
    (tmp_path / "ca.crt").write_bytes(ca.cert)
    script = (f"openssl x509 -pubkey -in {tmp_path}/ca.crt -noout | openssl rsa -pubin "
              "-outform der 2>/dev/null | openssl dgst -sha256 -hex | sed 's/^.* //'")
    expected = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                              check=True).stdout.strip()
    assert pki.ca_hash(ca.cert) == f"sha256:{expected}"


def test_issued_certificate_verifies_and_carries_sans(ca: pki.Pair, tmp_path: Path) -> None:
    leaf = pki.issue(ca, "kube-apiserver", dns=["kubernetes", "cp1"], ips=["10.96.0.1",
                                                                           "192.168.50.10"],
                     server=True)
    (tmp_path / "ca.crt").write_bytes(ca.cert)
    (tmp_path / "leaf.crt").write_bytes(leaf.cert)
    ok = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.crt"),
                         str(tmp_path / "leaf.crt")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    text = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "leaf.crt"), "-noout",
                           "-text"], capture_output=True, text=True, check=True).stdout
    assert "DNS:cp1" in text and "IP Address:192.168.50.10" in text
    assert "TLS Web Server Authentication" in text


def test_client_certificate_subject_is_user_and_groups(ca: pki.Pair) -> None:
    cert = pki.issue(ca, "kubernetes-admin", orgs=["kubeadm:cluster-admins"], client=True)
    assert pki.subject_of(cert.cert) == ("kubernetes-admin", ["kubeadm:cluster-admins"])


def test_kubeconfig_has_kubeadm_names_and_round_trips(ca: pki.Pair) -> None:
    cert = pki.issue(ca, "kubernetes-admin", client=True)
    text = pki.kubeconfig("https://10.0.0.1:6443", ca.cert, "kubernetes-admin",
                          cert=cert.cert, key=cert.key)
    assert "current-context: kubernetes-admin@kubernetes" in text
    creds = pki.read_kubeconfig(text)
    assert (creds.server, creds.ca, creds.cert, creds.key) == (
        "https://10.0.0.1:6443", ca.cert, cert.cert, cert.key)


def test_bootstrap_tokens_have_the_real_format() -> None:
    tokens = {pki.new_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", t) for t in tokens)


def test_service_account_jwt_verifies_expires_and_rejects_tampering() -> None:
    from cryptography.hazmat.primitives import serialization

    key = pki.new_key()
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    token = jws.sign_jwt({"sub": "system:serviceaccount:a:b", "exp": time.time() + 60},
                         pki.key_pem(key))
    assert jws.verify_jwt(token, pub) == {"sub": "system:serviceaccount:a:b",
                                          "exp": pytest.approx(time.time() + 60, abs=5)}
    assert jws.verify_jwt(token, pub, now=time.time() + 120) is None
    head, _body, sig = token.split(".")
    forged = jws.b64url(b'{"sub":"system:serviceaccount:kube-system:admin"}')
    assert jws.verify_jwt(f"{head}.{forged}.{sig}", pub) is None
    other = pki.new_key().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert jws.verify_jwt(token, other) is None


def test_detached_jws_binds_payload_and_token() -> None:
    sig = jws.detached_jws("kubeconfig-text", "abcdef", "0123456789abcdef")
    assert ".." in sig
    assert jws.verify_detached_jws(sig, "kubeconfig-text", "abcdef", "0123456789abcdef")
    assert not jws.verify_detached_jws(sig, "kubeconfig-text", "abcdef", "0123456789abcdeX")
    assert not jws.verify_detached_jws(sig, "other", "abcdef", "0123456789abcdef")
