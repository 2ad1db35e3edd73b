"""Signed tokens: service-account JWTs (RS256) and the detached JWS on `cluster-info` (HS256)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE uses."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    """Inverse of `b64url`."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _segment(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def sign_jwt(claims: dict[str, Any], key_pem: bytes) -> str:
    """A compact RS256 JWT over `claims`, signed with the service-account key."""
    key = serialization.load_pem_private_key(key_pem, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signing_input = _segment({"alg": "RS256", "typ": "JWT"}) + "." + _segment(claims)
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64url(sig)


def verify_jwt(token: str, pub_pem: bytes, now: float | None = None) -> dict[str, Any] | None:
    """The claims of a valid, unexpired RS256 JWT signed by `pub_pem`, else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(unb64url(parts[0]))
        claims = json.loads(unb64url(parts[1]))
        if header.get("alg") != "RS256":
            return None
        pub = serialization.load_pem_public_key(pub_pem)
        assert isinstance(pub, rsa.RSAPublicKey)
        pub.verify(
            unb64url(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (ValueError, InvalidSignature, json.JSONDecodeError):
        return None
    exp = claims.get("exp")
    if exp is not None and float(exp) < (now if now is not None else time.time()):
        return None
    return dict(claims)


def detached_jws(payload: str, token_id: str, token_secret: str) -> str:
    """The `header..signature` JWS the bootstrap signer puts into cluster-info per token."""
    header = _segment({"alg": "HS256", "kid": token_id})
    signing_input = f"{header}.{b64url(payload.encode())}"
    mac = hmac.new(token_secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{header}..{b64url(mac)}"


def verify_detached_jws(jws: str, payload: str, token_id: str, token_secret: str) -> bool:
    """Whether `jws` signs `payload` with this token (constant-time compare)."""
    return hmac.compare_digest(jws, detached_jws(payload, token_id, token_secret))
