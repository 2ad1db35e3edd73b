"""`kubeadm certs check-expiration` and `kubeadm certs renew`, over the stand-in's PKI.

kubeadm init writes the cluster CA, the API server's serving and kubelet-client certificates
and the admin kubeconfigs; the stand-in runs no etcd, scheduler, controller-manager process or
front proxy, so their certificates do not exist and are listed as missing, as kubeadm lists any
missing certificate.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from . import pki
from .kubeadm_common import Fail
from .paths import BANNER, p, write_private, write_public

PKI = "/etc/kubernetes/pki"
CONF = "/etc/kubernetes"


@dataclass(frozen=True)
class Managed:
    """One certificate kubeadm manages: a PEM file under pki/ or a kubeconfig's client cert."""

    name: str
    path: str  # "" when the stand-in never makes it
    kubeconfig: bool = False
    what: str = ""  # how `certs renew` names it

    def exists(self) -> bool:
        """Whether its file is there."""
        return bool(self.path) and p(self.path).exists()


CERTS = [
    Managed("admin.conf", f"{CONF}/admin.conf", True,
            "certificate embedded in the kubeconfig file for the admin to use and for kubeadm "
            "itself"),
    Managed("apiserver", f"{PKI}/apiserver.crt", False,
            "certificate for serving the Kubernetes API"),
    Managed("apiserver-etcd-client", ""),
    Managed("apiserver-kubelet-client", f"{PKI}/apiserver-kubelet-client.crt", False,
            "certificate for the API server to connect to kubelet"),
    Managed("controller-manager.conf", ""),
    Managed("etcd-healthcheck-client", ""),
    Managed("etcd-peer", ""),
    Managed("etcd-server", ""),
    Managed("front-proxy-client", ""),
    Managed("scheduler.conf", ""),
    Managed("super-admin.conf", f"{CONF}/super-admin.conf", True,
            "certificate embedded in the kubeconfig file for the super-admin"),
]
AUTHORITIES = [("ca", f"{PKI}/ca.crt"), ("etcd-ca", ""), ("front-proxy-ca", "")]


def short_duration(seconds: float) -> str:
    """Durations as kubeadm and kubectl print them: 45s, 12m, 23h, 364d, 9y."""
    if seconds < -1:
        return "<invalid>"
    for unit, size, below in (("s", 1, 60), ("m", 60, 60), ("h", 3600, 24),
                              ("d", 86400, 365)):
        if seconds < size * below:
            return f"{max(0, int(seconds // size))}{unit}"
    return f"{int(seconds // (365 * 86400))}y"


def _cert_pem(cert: Managed) -> bytes:
    data = p(cert.path).read_bytes()
    if not cert.kubeconfig:
        return data
    return pki.read_kubeconfig(data.decode()).cert


def _table(rows: list[tuple[str, ...]]) -> Iterator[str]:
    widths = [max(len(r[i]) for r in rows if len(r) > 1) for i in range(len(rows[0]))]
    for r in rows:
        if len(r) == 1:
            yield r[0]
        else:
            yield "   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()


def _expiry(pem: bytes, now: dt.datetime) -> tuple[str, str]:
    end = pki.not_after(pem)
    return end.strftime("%b %d, %Y %H:%M UTC"), short_duration((end - now).total_seconds())


def check_expiration(args: argparse.Namespace) -> None:
    """`kubeadm certs check-expiration`."""
    if not p(f"{PKI}/ca.crt").exists():
        raise Fail(f"couldn't load the certificate file {PKI}/ca.crt: open {PKI}/ca.crt: no "
                   "such file or directory")
    print('[check-expiration] Reading configuration from the "kubeadm-config" ConfigMap in '
          'namespace "kube-system"...')
    print("[check-expiration] Use 'kubeadm init phase upload-config --config "
          "your-config-file' to re-upload it.")
    print()
    now = dt.datetime.now(dt.UTC)
    rows: list[tuple[str, ...]] = [("CERTIFICATE", "EXPIRES", "RESIDUAL TIME",
                                    "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED")]
    for cert in CERTS:
        if cert.exists():
            rows.append((cert.name, *_expiry(_cert_pem(cert), now), "ca", "no"))
        else:
            rows.append((f"!MISSING! {cert.name}",))
    print("\n".join(_table(rows)))
    print()
    rows = [("CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "EXTERNALLY MANAGED")]
    for name, path in AUTHORITIES:
        if path and p(path).exists():
            rows.append((name, *_expiry(p(path).read_bytes(), now), "no"))
        else:
            rows.append((f"!MISSING! {name}",))
    print("\n".join(_table(rows)))
    print(f"\n({BANNER}: no etcd, scheduler or front proxy runs, so kubeadm made no "
          "certificates for them)")


def _ca() -> pki.Pair:
    cert, key = p(f"{PKI}/ca.crt"), p(f"{PKI}/ca.key")
    if not key.exists():
        raise Fail(f"failed to load the CA key from {PKI}/ca.key: the CA's private key is not "
                   "on this node")
    return pki.Pair(cert.read_bytes(), key.read_bytes())


def renew_one(cert: Managed, ca: pki.Pair) -> None:
    """Issue a fresh key and certificate like the current one, in place."""
    if cert.kubeconfig:
        text = p(cert.path).read_text()
        creds = pki.read_kubeconfig(text)
        fresh = pki.reissue(ca, creds.cert)
        users = yaml.safe_load(text).get("users") or []
        user = users[0]["name"] if users else pki.subject_of(creds.cert)[0]
        write_private(p(cert.path), pki.kubeconfig(creds.server, creds.ca, user,
                                                   cert=fresh.cert, key=fresh.key))
    else:
        fresh = pki.reissue(ca, p(cert.path).read_bytes())
        write_public(p(cert.path), fresh.cert)
        write_private(p(cert.path).with_suffix(".key"), fresh.key)


def renew(args: argparse.Namespace) -> None:
    """`kubeadm certs renew all|NAME`."""
    names = [c.name for c in CERTS if c.path]
    if args.name not in ("all", *names):
        raise Fail(f'unknown command "{args.name}" for "kubeadm certs renew"')
    ca = _ca()
    print('[renew] Reading configuration from the "kubeadm-config" ConfigMap in namespace '
          '"kube-system"...')
    print("[renew] Use 'kubeadm init phase upload-config --config your-config-file' to "
          "re-upload it.")
    print()
    for cert in CERTS:
        if args.name in ("all", cert.name) and cert.exists():
            renew_one(cert, ca)
            print(f"{cert.what} renewed")
        elif args.name == "all" and not cert.exists():
            print(f"MISSING! {cert.name}: not made by the {BANNER}")
    print("\nDone renewing certificates. You must restart the kube-apiserver, "
          "kube-controller-manager, kube-scheduler and etcd, so that they can use the new "
          "certificates.")

