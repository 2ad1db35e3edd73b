"""The kubeadm stand-in: init, join, token, upgrade, certs, reset and version with kubeadm's
flags and files."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import yaml

from . import kubeadm_certs, kubeadm_upgrade, services
from .client import ClientError
from .kubeadm_common import APISERVER, Fail
from .kubeadm_init import init
from .kubeadm_join import join
from .kubeadm_tokens import token_create, token_delete, token_list
from .paths import BANNER, git_version, p, test_mode

__all__ = ["Fail", "main", "parser"]


def reset(args: argparse.Namespace) -> None:
    """`kubeadm reset [-f]`: undo init/join on this node; leave CNI config and kubeconfigs."""
    if not args.force:
        print("[reset] WARNING: Changes made to this host by 'kubeadm init' or 'kubeadm join' "
              "will be reverted.")
        answer = input("[reset] Are you sure you want to proceed? [y/N]: ")
        if answer.strip().lower() not in ("y", "yes"):
            raise Fail("aborted reset operation")
    print(f"[reset] This is the {BANNER}")
    print("[preflight] Running pre-flight checks")
    if os.geteuid() != 0 and not test_mode():
        raise Fail("[preflight] Some fatal errors occurred:\n\t[ERROR IsPrivilegedUser]: user "
                   "is not running as root")
    print("[reset] Stopping the kubelet service")
    services.stop("kubelet")
    if p("/etc/kubernetes/manifests/kube-apiserver.yaml").exists():
        print("[reset] Stopping the control-plane services of the stand-in")
        services.disable(APISERVER)
    dirs = ["/etc/kubernetes/manifests", "/var/lib/kubelet", "/etc/kubernetes/pki"]
    etcd = p("/var/lib/etcd")
    if etcd.exists():
        dirs.insert(0, "/var/lib/etcd")
    print(f"[reset] Deleting contents of directories: [{' '.join(dirs)}]")
    for d in dirs:
        path = p(d)
        if path.is_dir():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    files = [f"/etc/kubernetes/{n}" for n in ("admin.conf", "super-admin.conf", "kubelet.conf",
                                               "bootstrap-kubelet.conf",
                                               "controller-manager.conf", "scheduler.conf")]
    print(f"[reset] Deleting files: [{' '.join(files)}]")
    for f in files:
        p(f).unlink(missing_ok=True)
    print("""
The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d

The reset process does not reset or clean up iptables rules or IPVS tables.
If you wish to reset iptables, you must do so manually by using the "iptables" command.

The reset process does not clean your kubeconfig files and you must remove them manually.
Please, check the contents of the $HOME/.kube/config file.""")


def version(args: argparse.Namespace) -> None:
    """`kubeadm version [-o short|json|yaml]`."""
    v = git_version()
    major, minor = v[1:].split(".")[:2]
    info = {"major": major, "minor": minor, "gitVersion": v, "gitCommit": "sandbox-standin",
            "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z",
            "goVersion": "none", "compiler": "python3", "platform": "linux/sandbox-standin"}
    if args.output == "short":
        print(v)
    elif args.output == "json":
        print(json.dumps({"clientVersion": info}, indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump({"clientVersion": info}, sort_keys=False), end="")
    else:
        fields = ", ".join(f'{k[0].upper()}{k[1:]}:"{val}"' for k, val in info.items())
        print(f"kubeadm version: &version.Info{{{fields}}} ({BANNER})")


def _bool(text: str) -> bool:
    """A Go-style boolean flag value."""
    if text.lower() in ("true", "1", "t"):
        return True
    if text.lower() in ("false", "0", "f"):
        return False
    raise argparse.ArgumentTypeError(f'invalid argument "{text}": strconv.ParseBool: '
                                     f'parsing "{text}": invalid syntax')


def parser() -> argparse.ArgumentParser:
    """kubeadm's command line (the part pifleet uses)."""
    ap = argparse.ArgumentParser(prog="kubeadm", description=f"kubeadm ({BANNER})")
    ap.add_argument("-v", "--v", default="0")
    sub = ap.add_subparsers(dest="command", required=True)

    i = sub.add_parser("init")
    i.add_argument("--pod-network-cidr", default="")
    i.add_argument("--service-cidr", default="10.96.0.0/12")
    i.add_argument("--apiserver-advertise-address", default="")
    i.add_argument("--apiserver-bind-port", type=int, default=6443)
    i.add_argument("--control-plane-endpoint", default="")
    i.add_argument("--token", default="")
    i.add_argument("--token-ttl", default="24h0m0s")
    i.add_argument("--kubernetes-version", default="")
    i.add_argument("--node-name", default="")
    i.add_argument("--ignore-preflight-errors", action="append", default=[])
    i.add_argument("--cri-socket", default="")
    i.add_argument("--upload-certs", action="store_true")
    i.set_defaults(fn=init)

    j = sub.add_parser("join")
    j.add_argument("endpoint", nargs="?", default="")
    j.add_argument("--token", default="")
    j.add_argument("--discovery-token", default="")
    j.add_argument("--discovery-token-ca-cert-hash", action="append", default=[])
    j.add_argument("--discovery-token-unsafe-skip-ca-verification", action="store_true")
    j.add_argument("--node-name", default="")
    j.add_argument("--apiserver-advertise-address", default="")
    j.add_argument("--ignore-preflight-errors", action="append", default=[])
    j.add_argument("--cri-socket", default="")
    j.set_defaults(fn=join)

    t = sub.add_parser("token")
    t.add_argument("--kubeconfig", default="")
    tsub = t.add_subparsers(dest="token_command", required=True)
    tc = tsub.add_parser("create")
    tc.add_argument("token", nargs="?", default="")
    tc.add_argument("--ttl", default="24h0m0s")
    tc.add_argument("--print-join-command", action="store_true")
    tc.add_argument("--description", default="")
    tc.add_argument("--kubeconfig", default="")
    tc.set_defaults(fn=token_create)
    tl = tsub.add_parser("list")
    tl.add_argument("--kubeconfig", default="")
    tl.set_defaults(fn=token_list)
    td = tsub.add_parser("delete")
    td.add_argument("ids", nargs="+")
    td.add_argument("--kubeconfig", default="")
    td.set_defaults(fn=token_delete)

    u = sub.add_parser("upgrade")
    usub = u.add_subparsers(dest="upgrade_command", required=True)
    for name, fn in (("plan", kubeadm_upgrade.plan), ("apply", kubeadm_upgrade.apply),
                     ("node", kubeadm_upgrade.node)):
        c = usub.add_parser(name)
        if name != "node":
            c.add_argument("version", nargs="?", default="")
        if name == "apply":
            c.add_argument("-y", "--yes", action="store_true")
            c.add_argument("-f", "--force", action="store_true")
        if name != "plan":
            c.add_argument("--certificate-renewal", type=_bool, default=True)
        c.add_argument("--ignore-preflight-errors", action="append", default=[])
        c.add_argument("--kubeconfig", default="")
        c.set_defaults(fn=fn)

    certs = sub.add_parser("certs")
    csub = certs.add_subparsers(dest="certs_command", required=True)
    ce = csub.add_parser("check-expiration")
    ce.add_argument("--kubeconfig", default="")
    ce.add_argument("--cert-dir", default="/etc/kubernetes/pki")
    ce.set_defaults(fn=kubeadm_certs.check_expiration)
    cr = csub.add_parser("renew")
    cr.add_argument("name")
    cr.add_argument("--kubeconfig", default="")
    cr.set_defaults(fn=kubeadm_certs.renew)

    r = sub.add_parser("reset")
    r.add_argument("-f", "--force", action="store_true")
    r.add_argument("--cri-socket", default="")
    r.add_argument("--ignore-preflight-errors", action="append", default=[])
    r.set_defaults(fn=reset)

    v = sub.add_parser("version")
    v.add_argument("-o", "--output", default="", choices=["", "short", "json", "yaml"])
    v.set_defaults(fn=version)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of `/usr/bin/kubeadm`."""
    args = parser().parse_args(argv)
    try:
        args.fn(args)
    except Fail as err:
        text = str(err)
        phase = "preflight" if "[preflight]" in text or "identity" in text else "kubeadm"
        if text.startswith("[upgrade"):  # upgrade's fatal errors print as they are
            print(text, file=sys.stderr)
        else:
            print(f"error execution phase {phase}: {text}" if phase == "preflight" else
                  f"error: {text}", file=sys.stderr)
        print("To see the stack trace of this error execute with --v=5 or higher",
              file=sys.stderr)
        return 1
    except ClientError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
