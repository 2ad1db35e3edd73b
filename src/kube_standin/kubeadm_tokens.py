"""`kubeadm token create|list|delete`, through admin.conf."""

from __future__ import annotations

import argparse
import base64
import re
import time

import yaml

from . import pki
from .client import Client, ClientError
from .kubeadm_certs import short_duration
from .kubeadm_common import (
    Fail,
    admin_client,
    bootstrap_secret,
    join_command,
    parse_duration,
)


def _admin(args: argparse.Namespace) -> Client:
    return admin_client(args.kubeconfig)


def token_create(args: argparse.Namespace) -> None:
    """`kubeadm token create [TOKEN] [--ttl D] [--print-join-command]`."""
    client = _admin(args)
    token = args.token or pki.new_token()
    if not re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token):
        raise Fail(f'the bootstrap token "{token}" was not of the form '
                   '"\\\\A([a-z0-9]{6})\\\\.([a-z0-9]{16})\\\\z"')
    client.post("/api/v1/namespaces/kube-system/secrets",
                bootstrap_secret(token, parse_duration(args.ttl), args.description or ""))
    if not args.print_join_command:
        print(token)
        return
    info = client.get("/api/v1/namespaces/kube-public/configmaps/cluster-info")
    cluster = yaml.safe_load(info["data"]["kubeconfig"])["clusters"][0]["cluster"]
    endpoint = cluster["server"].split("://", 1)[1]
    print(join_command(endpoint, token, base64.b64decode(cluster["certificate-authority-data"])))


def token_list(args: argparse.Namespace) -> None:
    """`kubeadm token list`."""
    client = _admin(args)
    items = client.get("/api/v1/namespaces/kube-system/secrets?fieldSelector=type%3D"
                       "bootstrap.kubernetes.io%2Ftoken")["items"]
    rows = [("TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS")]
    for s in items:
        d = {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
        expires = d.get("expiration", "")
        ttl = "<forever>"
        if expires:
            left = time.mktime(time.strptime(expires, "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(
                time.gmtime())
            if left <= 0:
                continue
            ttl = short_duration(left)
        usages = ",".join(u.removeprefix("usage-bootstrap-") for u in sorted(d)
                          if u.startswith("usage-bootstrap-") and d[u] == "true")
        rows.append((f"{d['token-id']}.{d['token-secret']}", ttl, expires or "<never>", usages,
                     d.get("description", "") or "<none>", d.get("auth-extra-groups", "")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def token_delete(args: argparse.Namespace) -> None:
    """`kubeadm token delete ID...`."""
    client = _admin(args)
    for tok in args.ids:
        if not re.fullmatch(r"[a-z0-9]{6}(\.[a-z0-9]{16})?", tok):
            raise Fail('given token didn\'t match pattern "^(?P<token_id>[a-z0-9]{6})$" or '
                       '"^([a-z0-9]{6})\\.([a-z0-9]{16})$"')
        token_id = tok.split(".")[0]
        try:
            client.delete(f"/api/v1/namespaces/kube-system/secrets/bootstrap-token-{token_id}")
        except ClientError as err:
            raise Fail(f'failed to delete bootstrap token "{token_id}": {err.message}') from None
        print(f'bootstrap token "{token_id}" deleted')
