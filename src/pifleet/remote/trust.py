"""`pifleet trust`: first contact with every node.

For each node, in parallel: pin its host key, log in with the fleet key or else the first-contact
password, install the fleet's public key, give the SSH user passwordless sudo, then prove that a
key-only login with passwordless sudo works. With `harden`, also disable password logins and
replace the default password with a random one kept in the fleet's secrets. Every step is
idempotent: re-running converges.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import replace
from io import StringIO

import gevent
import paramiko
from pyinfra.operations import files, server

from pifleet.errors import PifleetError
from pifleet.events import Emitter
from pifleet.fleet import Fleet, Node
from pifleet.remote import hostkeys
from pifleet.remote.engine import NodeOutcome, Phase, PhaseResult
from pifleet.remote.keys import public_key_line
from pifleet.remote.secrets import get_secret, set_secret
from pifleet.remote.targets import key_target, node_password, node_port, node_user

PHASE = "trust"
# Sorted first among sshd's drop-ins, so its values win (sshd keeps the first value it reads;
# Debian's cloud-init images ship 50-cloud-init.conf with PasswordAuthentication yes).
HARDEN_DROP_IN = "/etc/ssh/sshd_config.d/00-pifleet.conf"
PASSWORD_SECRET = "password"


def trust(fleet: Fleet, nodes: list[Node], emit: Emitter, *, password: str | None = None,
          override: bool = False, harden: bool = False) -> PhaseResult:
    """Run first contact on `nodes`.

    `password` is used for the nodes whose fleet file gives none, or for every node with
    `override`. A node with no password at all can still be trusted again once its key is in.
    """
    with emit.step(None, PHASE, "fleet key") as step:
        step.message = public_key_line(fleet).split()[0]
    reachable = _pin_host_keys(fleet, nodes, emit)

    targets = []
    for node in reachable:
        target = key_target(fleet, node)
        # paramiko tries the key first and the password only if the key is refused, so one
        # connection serves a first contact and a re-run alike.
        first_password = password if override else (node_password(fleet, node) or password)
        targets.append(replace(target, password=first_password))
    setup = Phase(PHASE, targets, emit)
    setup.connect()
    for target in targets:
        setup.add("authorized key", server.user_authorized_keys, nodes=[target.name],
                  user=target.user, public_keys=[public_key_line(fleet, target.key)])
        setup.add("passwordless sudo", files.put, nodes=[target.name],
                  src=StringIO(f"{target.user} ALL=(ALL) NOPASSWD:ALL\n"),
                  dest=f"/etc/sudoers.d/010_pifleet-{target.user}",
                  user="root", group="root", mode="440",
                  _sudo=True, _sudo_password=target.password)
    result = setup.run()

    verify = Phase(PHASE, [key_target(fleet, fleet.node(n)) for n in result.succeeded], emit)
    verify.connect()
    verify.add("key login and sudo", server.shell, commands=["sudo -n true"], check=True)
    if harden:
        _add_hardening(fleet, verify)
    verified = verify.run()

    for name in [n.name for n in nodes]:
        if name in verified.outcomes:
            result.outcomes[name] = verified.outcomes[name]
        elif name not in result.outcomes:
            result.outcomes[name] = _unreachable(emit, name)
    return result


def _pin_host_keys(fleet: Fleet, nodes: list[Node], emit: Emitter) -> list[Node]:
    """Pin every node's host key in parallel; return the nodes that passed."""
    known_hosts = fleet.resolve(fleet.ssh.known_hosts)

    def pin(node: Node) -> bool:
        port = node_port(fleet, node)
        try:
            with emit.step(node.name, PHASE, "host key") as step:
                try:
                    key = hostkeys.scan(node.address, port, prefer=hostkeys.pinned_types(
                        known_hosts, node.address, port))
                except OSError as exc:
                    raise ConnectionError(
                        f"cannot reach {node.address}:{port}: {exc.strerror or exc}") from exc
                pinned = hostkeys.pin(node.name, node.address, port, known_hosts, key)
                step.changed = pinned.new
                step.message = ("pinned " if pinned.new else "matches ") + pinned.fingerprint
        except (OSError, EOFError, paramiko.SSHException, PifleetError):
            return False  # reported by the step
        return True

    jobs = [(node, gevent.spawn(pin, node)) for node in nodes]
    gevent.joinall([job for _, job in jobs])
    return [node for node, job in jobs if job.value]


def _add_hardening(fleet: Fleet, phase: Phase) -> None:
    """Disable password logins and replace each node's password with a random one."""
    phase.add("disable password login", files.put,
              src=StringIO("# Written by pifleet trust --harden: keys only.\n"
                           "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"),
              dest=HARDEN_DROP_IN, user="root", group="root", mode="644", _sudo=True)
    # Old sshd versions (HypriotOS 1.x) have no sshd_config.d: set the main file too.
    phase.add("disable password login (main config)", files.line,
              path="/etc/ssh/sshd_config", line=r"^#?\s*PasswordAuthentication\s.*",
              replace="PasswordAuthentication no", _sudo=True)
    phase.add("reload sshd", server.shell, _sudo=True, commands=[
        "sshd -t",
        "systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null"
        " || service ssh reload",
        "sshd -T | grep -qix 'passwordauthentication no'",
    ])
    for host in phase.active_hosts():
        node = fleet.node(host.name)
        password = get_secret(fleet, node.name, PASSWORD_SECRET)
        if password is None:
            password = _random_password()
            # Kept before it is set, so a failure in between never loses it.
            set_secret(fleet, node.name, PASSWORD_SECRET, password)
        phase.add("replace default password", server.shell, nodes=[node.name], _sudo=True,
                  commands=["chpasswd"], _stdin=f"{node_user(fleet, node)}:{password}\n")


def _random_password(length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _unreachable(emit: Emitter, name: str) -> NodeOutcome:
    failure = next((e for e in emit.failures if e.node == name), None)
    return NodeOutcome(ok=False, step=failure.step if failure else "host key",
                       error=failure.message if failure else "unreachable")
