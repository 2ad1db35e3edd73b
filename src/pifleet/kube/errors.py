"""Kubernetes API failures in pifleet's words: what went wrong, where, and what to do."""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
import msgspec
from lightkube.core.exceptions import ApiError as LightkubeApiError

from pifleet.errors import Failed

# OpenSSL's verify codes (x509_vfy.h) for the problems a user can fix.
_NOT_YET_VALID, _EXPIRED = 9, 10
# Another CA: unknown issuer, self-signed, or (every kubeadm CA is named `kubernetes`) a CA of
# the same name whose signature does not match, as after the cluster was initialised again.
_OTHER_CA = frozenset({2, 7, 18, 19, 20, 21})
_HOSTNAME_MISMATCH, _IP_MISMATCH = 62, 64
CLOCK_HINT = ("Raspberry Pis up to the 4 have no real-time clock and start at the last "
              "shutdown's time until NTP syncs: compare `date -u` here and on the control plane "
              "(`timedatectl` shows whether it is synchronised), fix the wrong one and retry")


class KubeError(Failed):
    """A Kubernetes API request failed (exit status 1)."""


class Unreachable(KubeError):
    """The API server could not be reached at all."""


class CertificateProblem(KubeError):
    """TLS verification failed (x509): a clock, an address or a CA is wrong."""


class Unauthorized(KubeError):
    """The API server refused the credentials (401)."""


class Forbidden(KubeError):
    """The credentials may not do this (403)."""


class ApiFailure(KubeError):
    """Any other error status from the API server; `code` and `reason` as it sent them."""

    def __init__(self, message: str, code: int, reason: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _certificate(err: ssl.SSLCertVerificationError, server: str, host: str) -> KubeError:
    code = err.verify_code
    if code in (_NOT_YET_VALID, _EXPIRED):
        state = "not yet valid" if code == _NOT_YET_VALID else "expired"
        return CertificateProblem(
            f"x509: the API server's certificate at {server} is {state} by this machine's "
            f"clock: a clock is wrong. {CLOCK_HINT}")
    if code in (_HOSTNAME_MISMATCH, _IP_MISMATCH):
        return CertificateProblem(
            f"x509: the API server's certificate is not valid for {host}: reach it by an "
            f"address the certificate names, or add {host} to the control plane's serving "
            f"certificate (kubeadm's --apiserver-cert-extra-sans={host}) and fetch the "
            "kubeconfig again")
    if code in _OTHER_CA:
        return CertificateProblem(
            f"x509: the server at {server} is not signed by the cluster CA in the kubeconfig: "
            "the cluster was re-initialised since the kubeconfig was written (run `pifleet "
            "kubeconfig` again), or another server answers at that address")
    return CertificateProblem(f"x509: the API server's certificate at {server} was refused: "
                              f"{err.verify_message}")


def translate(exc: BaseException, server: str, host: str = "") -> KubeError:
    """The pifleet error for an exception raised while talking to the API at `server`."""
    host = host or server
    for link in _chain(exc):
        if isinstance(link, LightkubeApiError):
            status = link.status
            return _status(int(status.code or 0), str(status.reason or ""),
                           str(status.message or ""), server)
        if isinstance(link, httpx2.HTTPStatusError):
            response = link.response
            return _status(response.status_code, response.reason_phrase,
                           response.text[:200], server)
        if isinstance(link, ssl.SSLCertVerificationError):
            return _certificate(link, server, host)
    for link in _chain(exc):
        if isinstance(link, socket.gaierror):
            return Unreachable(f"cannot reach the Kubernetes API at {server}: the name {host} "
                               f"does not resolve ({link.strerror})")
        if isinstance(link, ssl.SSLError):
            return Unreachable(f"cannot reach the Kubernetes API at {server}: TLS failed "
                               f"({link.reason or link})")
        if isinstance(link, ConnectionRefusedError) or getattr(link, "errno", None) == \
                errno.ECONNREFUSED:
            return _refused(server)
    if isinstance(exc, httpx2.TimeoutException | TimeoutError | socket.timeout):
        return Unreachable(f"cannot reach the Kubernetes API at {server}: no answer in time "
                           "(is the control plane on and on the network?)")
    if isinstance(exc, httpx2.TransportError | OSError):
        detail = str(exc) or type(exc).__name__
        if "refused" in detail.lower():
            return _refused(server)
        return Unreachable(f"cannot reach the Kubernetes API at {server}: {detail}")
    return KubeError(f"Kubernetes API at {server}: {exc}")


def _refused(server: str) -> Unreachable:
    return Unreachable(f"cannot reach the Kubernetes API at {server}: connection refused (is "
                       "the control plane up and its API server running?)")


def _status(code: int, reason: str, message: str, server: str) -> KubeError:
    if code == 401:
        return Unauthorized(
            f"the API server at {server} refused the kubeconfig's credentials (401 "
            "Unauthorized): the cluster was re-initialised or the certificate expired (or the "
            "control plane's clock is wrong); run `pifleet kubeconfig` again")
    if code == 403:
        return Forbidden(f"the API server at {server} forbids this: {message}")
    return ApiFailure(f"the API server at {server} answered {code} {reason}: {message}",
                      code, reason)


@contextmanager
def talking_to(server: str, host: str = "") -> Iterator[None]:
    """Turn whatever a request to the API raises into a pifleet error with the fix."""
    try:
        yield
    except KubeError:
        raise
    except (LightkubeApiError, httpx2.HTTPError, OSError, ssl.SSLError) as exc:
        raise translate(exc, server, host) from exc
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise KubeError(f"the API server at {server} sent an object pifleet cannot read: "
                        f"{exc}") from exc
