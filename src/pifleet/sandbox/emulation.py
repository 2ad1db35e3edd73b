"""Running arm64 nodes on another architecture: qemu-user through binfmt_misc.

Debian's qemu-user-static registers its emulators with flag F (the kernel opens the emulator
once, so it also works inside containers) but without flag C, so set-user-ID programs lose
their privileges: `sudo` inside an emulated node fails with "effective uid is not 0". While
emulated sandboxes run, `up` therefore registers an entry of its own for the same binaries
with flags F and C (the newest entry wins), and the last `down` removes it again, together
with the binfmt_misc mount if `up` made it. What was changed is recorded under /run/pifleet.
"""

from __future__ import annotations

import json
from pathlib import Path

from pifleet.errors import BadInput
from pifleet.sandbox.commands import run
from pifleet.sandbox.registry import run_dir

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
PACKAGES = ("qemu-user-static", "binfmt-support")
# Debian architecture -> the entry qemu-user-static installs.
DEBIAN_ENTRY = {"arm64": "qemu-aarch64"}
OWN_PREFIX = "pifleet-"


def parse_entry(text: str) -> dict[str, str]:
    """A binfmt_misc entry file (`enabled`, `interpreter ...`, `flags: ...`) as a dict."""
    fields = {"state": text.splitlines()[0].strip() if text.strip() else ""}
    for line in text.splitlines()[1:]:
        key, _, value = line.replace(":", " ", 1).partition(" ")
        fields[key.strip()] = value.strip()
    return fields


def register_line(name: str, entry: dict[str, str], flags: str) -> str:
    """The string that registers a copy of `entry` under `name` with `flags`."""
    def escaped(hexdigits: str) -> str:
        return "".join(f"\\x{hexdigits[i:i + 2]}" for i in range(0, len(hexdigits), 2))

    return (f":{name}:M:{entry.get('offset', '0')}:{escaped(entry['magic'])}:"
            f"{escaped(entry['mask'])}:{entry['interpreter']}:{flags}")


def ready(arch: str, binfmt: Path = BINFMT_DIR) -> bool:
    """True when `arch` programs run in containers with set-user-ID working (flags F and C)."""
    name = DEBIAN_ENTRY.get(arch)
    if name is None:
        return False
    for candidate in (binfmt / (OWN_PREFIX + name), binfmt / name):
        if candidate.exists():
            entry = parse_entry(candidate.read_text())
            if entry["state"] == "enabled" and {"F", "C"} <= set(entry.get("flags", "")):
                return True
    return False


def _record() -> Path:
    return run_dir() / "emulation.json"


def enable(arch: str, binfmt: Path = BINFMT_DIR) -> list[str]:
    """Make `arch` nodes work here. Returns what was changed; BadInput says what to do."""
    name = DEBIAN_ENTRY.get(arch)
    if name is None:
        raise BadInput(f"--arch {arch}: no emulator known for it (choose native or arm64)")
    if ready(arch, binfmt):
        return []
    done: list[str] = []
    record = json.loads(_record().read_text()) if _record().exists() else {}
    if not (binfmt / "register").exists():
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)])
        record["mounted"] = True
        done.append(f"mounted binfmt_misc on {binfmt}")
    if not (binfmt / name).exists() and Path("/usr/sbin/update-binfmts").exists():
        run(["update-binfmts", "--enable", name], check=False)
    if not (binfmt / name).exists():
        raise BadInput(f"--arch {arch} needs qemu-user-static: apt-get install "
                       f"{' '.join(PACKAGES)} && update-binfmts --enable {name}")
    entry = parse_entry((binfmt / name).read_text())
    own = OWN_PREFIX + name
    # Keep Debian's flags (its wrapper needs P, preserve argv[0]) and add F and C.
    flags = "".join(sorted(set(entry.get("flags", "")) | {"F", "C"}))
    (binfmt / "register").write_text(register_line(own, entry, flags))
    record.setdefault("entries", []).append(own)
    done.append(f"registered {own} (qemu-user with set-user-ID programs working)")
    _record().write_text(json.dumps(record) + "\n")
    if not ready(arch, binfmt):
        raise BadInput(f"--arch {arch}: could not register {own} in {binfmt}")
    return done


def restore(binfmt: Path = BINFMT_DIR) -> list[str]:
    """Undo what `enable` changed (called by the last `down`). Returns what was undone."""
    if not _record().exists():
        return []
    record = json.loads(_record().read_text())
    undone = []
    for own in record.get("entries", []):
        if (binfmt / own).exists():
            (binfmt / own).write_text("-1")  # writing -1 removes an entry
            undone.append(f"removed binfmt entry {own}")
    if record.get("mounted") and (binfmt / "register").exists():
        run(["umount", str(binfmt)], check=False)
        undone.append(f"unmounted {binfmt}")
    _record().unlink()
    return undone
