"""firstrun.sh's user part: userconf runs with or without a password, so the first-boot user
wizard of Raspberry Pi OS Bookworm is switched off on a headless card (run by bash, with
stand-ins for the account commands)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pifleet.flash.bootconfig import FirstBoot, firstrun

HASH = "$6$salt$" + "h" * 86
USERCONF = "/usr/lib/userconf-pi/userconf"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _stand_ins(bin_dir: Path, log: Path, users: Path) -> None:
    """Account commands that log their arguments; `id` answers from the `users` folder."""
    bin_dir.mkdir()
    users.mkdir()
    (users / "pi").touch()
    scripts = {
        "getent": 'echo "pi:x:1000:1000::/home/pi:/bin/bash"',
        "id": f'[ -e "{users}/$1" ]',
        "usermod": f'echo "usermod $*" >>"{log}"; '
                   f'if [ "$1" = -l ]; then mv "{users}/$3" "{users}/$2"; fi',
        "groupmod": f'echo "groupmod $*" >>"{log}"',
        "useradd": f'echo "useradd $*" >>"{log}"',
        "chpasswd": f'echo "chpasswd $* $(cat)" >>"{log}"',
        "userconf": f'echo "userconf [$1] [$2]" >>"{log}"; mv "{users}/pi" "{users}/$1"',
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(0o755)


def _run_user_part(boot: FirstBoot, tmp_path: Path, with_userconf: bool) -> list[str]:
    script = firstrun.script(boot)
    start = script.index("\nNEW_USER=")
    part = script[start:script.index('\necho "$NEW_USER ALL=', start)]
    bin_dir, log, users = tmp_path / "bin", tmp_path / "log", tmp_path / "users"
    _stand_ins(bin_dir, log, users)
    assert USERCONF in part
    userconf = str(bin_dir / "userconf") if with_userconf else str(tmp_path / "absent")
    part = part.replace(USERCONF, userconf)
    done = subprocess.run(["bash", "-c", part], capture_output=True, text=True, check=False,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines() if log.exists() else []


def test_userconf_runs_without_a_password_and_the_login_stays_key_only(tmp_path: Path
                                                                       ) -> None:
    calls = _run_user_part(FirstBoot(hostname="brig", user="student"), tmp_path, True)
    assert calls[0] == "userconf [student] []"
    assert calls[-1] == "usermod -p ! student"
    assert not any(c.startswith(("usermod -l", "useradd", "chpasswd")) for c in calls)


def test_userconf_gets_the_hash(tmp_path: Path) -> None:
    calls = _run_user_part(FirstBoot(hostname="brig", user="student", password_hash=HASH),
                           tmp_path, True)
    assert calls[0] == f"userconf [student] [{HASH}]"
    assert not any(c.startswith("usermod -p") for c in calls)


def test_without_userconf_the_first_user_is_renamed(tmp_path: Path) -> None:
    calls = _run_user_part(FirstBoot(hostname="brig", user="student"), tmp_path, False)
    assert calls[:3] == ["usermod -l student pi", "usermod -m -d /home/student student",
                         "groupmod -n student pi"]
    assert calls[-1] == "usermod -p ! student"


def test_whole_script_parses(tmp_path: Path) -> None:
    script = tmp_path / "firstrun.sh"
    script.write_text(firstrun.script(FirstBoot(hostname="brig", user="student",
                                                keyboard="de", locale="de_DE.UTF-8",
                                                timezone="Europe/Berlin")))
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
