"""What makes one node itself: the files written into its overlay upper layer before boot.

A node looks like a freshly flashed Raspberry Pi: its hostname in /etc/hostname and /etc/hosts,
user `pirate` (password `hypriot`, group sudo, and sudo asks for the password, as HypriotOS),
sshd with its default password login, a one-line /boot/firmware/cmdline.txt and a config.txt,
and a `vcgencmd` stand-in. It also gets what a shared base cannot give: its own SSH host keys
and machine-id. Files go into the upper layer directly, so nothing needs to run inside the
node (that also works for a foreign architecture).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from pifleet.sandbox.commands import run
from pifleet.sandbox.fsutil import write_file

USER = "pirate"
PASSWORD = "hypriot"
UID = 1000
SUDO_GROUP = "sudo"
VCGENCMD_STATE = "var/lib/sandbox-vcgencmd/state"
APT_CONF = "etc/apt/apt.conf.d/01pifleet-sandbox"


@dataclass(frozen=True)
class NodeConfig:
    """Everything the node's files depend on."""

    name: str
    index: int
    address: str
    gateway: str
    apt_proxy: str  # http://BRIDGE:PORT, the sandbox's own apt proxy
    packages_host: str  # the bridge address, reached without the proxy
    sources: str  # the node's debian.sources (deb822)
    apt_settings: tuple[str, ...] = ()  # lines copied from this machine's apt configuration


def hosts_file(name: str) -> str:
    """/etc/hosts naming the node itself, as Raspberry Pi OS writes it."""
    return ("127.0.0.1\tlocalhost\n"
            "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
            "ff02::1\t\tip6-allnodes\n"
            "ff02::2\t\tip6-allrouters\n\n"
            f"127.0.1.1\t{name}\n")


def partuuid(name: str) -> str:
    """A disk identifier for the node's cmdline.txt, stable per name."""
    return f"{uuid.uuid5(uuid.NAMESPACE_DNS, name).hex[:8]}-02"


def cmdline_txt(name: str) -> str:
    """The kernel command line a Raspberry Pi OS Bookworm card carries: exactly one line."""
    # facts.md section 5: cmdline.txt is one line; tools only ever append to it.
    return (f"console=serial0,115200 console=tty1 root=PARTUUID={partuuid(name)} "
            "rootfstype=ext4 fsck.repair=yes rootwait\n")


CONFIG_TXT = """\
# Firmware settings of a Raspberry Pi (sandbox node: read by nothing, kept for tools to edit)
dtparam=audio=on
camera_auto_detect=1
display_auto_detect=1
auto_initramfs=1
dtoverlay=vc4-kms-v3d
max_framebuffers=2
disable_fw_kms_setup=1
arm_64bit=1
disable_overscan=1
arm_boost=1

[all]
"""

VCGENCMD = r"""#!/bin/sh
# pifleet sandbox stand-in for the Raspberry Pi firmware tool `vcgencmd`.
# It prints the real output formats; the values come from the state file below, so tests can
# make a node report heat or under-voltage (e.g. throttled=0x50005).
STATE=/__STATE__
value() {
    v=$(sed -n "s/^$1=//p" "$STATE" 2>/dev/null | tail -n 1)
    [ -n "$v" ] && echo "$v" || echo "$2"
}
case "$1" in
    measure_temp) echo "temp=$(value temp 47.2)'C" ;;
    get_throttled) echo "throttled=$(value throttled 0x0)" ;;
    measure_volts) echo "volt=$(value volts 0.8500)V" ;;
    measure_clock) echo "frequency(48)=$(value clock 1500000000)" ;;
    *) echo "error=2 error_msg=\"Command not supported by the pifleet sandbox stand-in\""
       exit 2 ;;
esac
""".replace("__STATE__", VCGENCMD_STATE)


def vcgencmd_state(temp: str = "47.2", throttled: str = "0x0") -> str:
    """The stand-in's state file: one `key=value` per line."""
    return f"temp={temp}\nthrottled={throttled}\n"


def apt_conf(apt_proxy: str, packages_host: str, extra: tuple[str, ...] = ()) -> str:
    """apt through the sandbox's proxy, except the package server on the bridge (direct)."""
    return (f'Acquire::http::Proxy "{apt_proxy}";\n'
            # An https archive is reached through a tunnel of the same proxy.
            f'Acquire::https::Proxy "{apt_proxy}";\n'
            f'Acquire::http::Proxy::{packages_host} "DIRECT";\n'
            # A download cut short upstream is not cached: apt asks again.
            'Acquire::Retries "5";\n' + "".join(line + "\n" for line in extra))


def add_account_lines(files: dict[str, str], user: str, uid: int, password_hash: str,
                      groups: tuple[str, ...]) -> dict[str, str]:
    """passwd, shadow, group and gshadow texts with `user` added (unchanged if present)."""
    out = dict(files)
    if any(line.split(":", 1)[0] == user for line in files["passwd"].splitlines()):
        return out
    out["passwd"] = _append(files["passwd"], f"{user}:x:{uid}:{uid}:,,,:/home/{user}:/bin/bash")
    # Days since the epoch for "last changed": any past date; 0 would force a change at login.
    out["shadow"] = _append(files["shadow"], f"{user}:{password_hash}:19000:0:99999:7:::")
    out["group"] = _append(_add_members(files["group"], groups, user, 3), f"{user}:x:{uid}:")
    out["gshadow"] = _append(_add_members(files["gshadow"], groups, user, 3), f"{user}:!::")
    return out


def _append(text: str, line: str) -> str:
    return (text if text.endswith("\n") or not text else text + "\n") + line + "\n"


def _add_members(text: str, groups: tuple[str, ...], user: str, field: int) -> str:
    lines = []
    for line in text.splitlines():
        parts = line.split(":")
        if parts[0] in groups and len(parts) > field:
            members = [m for m in parts[field].split(",") if m]
            if user not in members:
                members.append(user)
            parts[field] = ",".join(members)
            line = ":".join(parts)
        lines.append(line)
    return "\n".join(lines) + "\n"


def hash_password(password: str) -> str:
    """A SHA-512 crypt hash (the form /etc/shadow uses), made by openssl on this machine."""
    return run(["openssl", "passwd", "-6", "-stdin"], input=password + "\n").stdout.strip()


class Layer:
    """Writes into a node's upper layer, with folder modes and owners copied from the base.

    overlayfs shows an upper folder's own mode and owner, so a folder created carelessly here
    would change, say, /etc's permissions inside the node.
    """

    def __init__(self, base: Path, upper: Path) -> None:
        self.base = base
        self.upper = upper

    def current(self, rel: str) -> Path:
        """Where `rel` is read from now: the upper layer if written there, else the base."""
        upper = self.upper / rel
        return upper if upper.exists() else self.base / rel

    def ensure_dir(self, rel: str, mode: int = 0o755, owner: tuple[int, int] = (0, 0)) -> Path:
        """Create `rel` and its parents in the upper layer like the base has them."""
        self.upper.mkdir(parents=True, exist_ok=True)
        path = self.upper
        parts = Path(rel).parts
        for depth, part in enumerate(parts):
            path = path / part
            if path.is_dir():
                continue
            source = self.base.joinpath(*parts[:depth + 1])
            if source.is_dir() and not source.is_symlink():
                st = source.stat()
                mode_now, uid, gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
            else:
                mode_now, (uid, gid) = mode, owner
            path.mkdir()
            os.chown(path, uid, gid)
            os.chmod(path, mode_now)
        return path

    def write(self, rel: str, content: str | bytes, mode: int | None = None,
              owner: tuple[int, int] | None = None) -> None:
        """Write a file, keeping the base file's mode and owner unless told otherwise."""
        source = self.base / rel
        st = source.stat() if source.is_file() and not source.is_symlink() else None
        use_mode = mode if mode is not None else (st.st_mode & 0o7777 if st else 0o644)
        use_owner = owner or ((st.st_uid, st.st_gid) if st else (0, 0))
        self.ensure_dir(str(Path(rel).parent))
        target = self.upper / rel
        write_file(target, content, use_mode)
        os.chown(target, *use_owner)


def write_identity(layer: Layer, config: NodeConfig) -> None:
    """Hostname, hosts, machine-id and SSH host keys of this node alone."""
    layer.write("etc/hostname", config.name + "\n")
    layer.write("etc/hosts", hosts_file(config.name))
    if not (layer.upper / "etc/machine-id").exists():
        layer.write("etc/machine-id", uuid.uuid4().hex + "\n", mode=0o444)
    layer.ensure_dir("etc/ssh")
    # -A makes every missing key type under the given root, and keeps keys already there.
    run(["ssh-keygen", "-A", "-f", str(layer.upper)])


def write_account(layer: Layer, password_hash: str) -> None:
    """User pirate in group sudo, with a home made from /etc/skel."""
    names = ("passwd", "shadow", "group", "gshadow")
    files = {n: layer.current(f"etc/{n}").read_text() for n in names}
    updated = add_account_lines(files, USER, UID, password_hash, (SUDO_GROUP,))
    for name in names:
        if updated[name] != files[name]:
            layer.write(f"etc/{name}", updated[name])
    home = f"home/{USER}"
    layer.ensure_dir(home, mode=0o755, owner=(UID, UID))
    skel = layer.base / "etc/skel"
    for item in skel.iterdir() if skel.is_dir() else ():
        if item.is_file() and not (layer.upper / home / item.name).exists():
            layer.write(f"{home}/{item.name}", item.read_bytes(), mode=0o644, owner=(UID, UID))


def write_pi_files(layer: Layer, config: NodeConfig) -> None:
    """Boot partition files and the vcgencmd stand-in with its state file."""
    layer.write("boot/firmware/cmdline.txt", cmdline_txt(config.name))
    layer.write("boot/firmware/config.txt", CONFIG_TXT)
    layer.write("usr/bin/vcgencmd", VCGENCMD, mode=0o755)
    if not (layer.upper / VCGENCMD_STATE).exists():
        layer.write(VCGENCMD_STATE, vcgencmd_state())


def write_apt(layer: Layer, config: NodeConfig) -> None:
    """apt through the proxy on the bridge, with this machine's mirror."""
    layer.write(APT_CONF, apt_conf(config.apt_proxy, config.packages_host, config.apt_settings))
    layer.write("etc/apt/sources.list",
                "# Debian sources are in /etc/apt/sources.list.d/debian.sources\n")
    layer.write("etc/apt/sources.list.d/debian.sources", config.sources)


def write_resolver(layer: Layer) -> None:
    """No DNS server: names fail at once instead of timing out (apt resolves via the proxy)."""
    layer.write("etc/resolv.conf",
                "# pifleet sandbox: no name server; apt reaches its mirror through the proxy\n",
                mode=0o644)


def personalize(base: Path, upper: Path, config: NodeConfig, password_hash: str) -> None:
    """Write all of a node's own files into its upper layer. Safe to repeat."""
    layer = Layer(base, upper)
    write_identity(layer, config)
    write_account(layer, password_hash)
    write_pi_files(layer, config)
    write_apt(layer, config)
    write_resolver(layer)
