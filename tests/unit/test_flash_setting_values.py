"""Timezone, locale and keyboard: one check, and what passes works in firstrun.sh's sed commands."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pifleet.errors import BadInput
from pifleet.flash.bootconfig import FirstBoot, firstrun
from pifleet.flash.bootconfig.settings import check_setting

GOOD = [("--timezone", "Europe/Berlin"), ("--timezone", "America/Argentina/Buenos_Aires"),
        ("--timezone", "Etc/GMT+5"), ("--timezone", "UTC"), ("--locale", "en_GB.UTF-8"),
        ("--locale", "sr_RS@latin"), ("--locale", "C.UTF-8"), ("--keyboard", "de"),
        ("--keyboard", "us,de")]
BAD = [("--keyboard", "de/x"), ("--keyboard", "de&"), ("--keyboard", "de\\1"),
       ("--keyboard", "de x"), ("--locale", "en/GB.UTF-8"), ("--locale", "en_GB..UTF-8"),
       ("--locale", "en_GB.UTF-8'"), ("--timezone", "../../etc/passwd"),
       ("--timezone", "Europe/Berlin; rm -rf /"), ("--timezone", "/etc/passwd"),
       ("--timezone", "Europe//Berlin"), ("--keyboard", "")]
FIELD = {"--timezone": "timezone", "--locale": "locale", "--keyboard": "keyboard"}


@pytest.mark.parametrize(("option", "value"), GOOD)
def test_real_names_pass(option: str, value: str) -> None:
    assert check_setting(option, value) == value
    FirstBoot(hostname="brig", **{FIELD[option]: value})


@pytest.mark.parametrize(("option", "value"), BAD)
def test_bad_names_are_refused_naming_the_option(option: str, value: str) -> None:
    with pytest.raises(BadInput, match=re.escape(option)):
        FirstBoot(hostname="brig", **{FIELD[option]: value})


def test_firstrun_has_no_check_of_its_own() -> None:
    assert not hasattr(firstrun, "_safe")


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("sed") is None,
                    reason="needs bash and sed")
def test_sed_commands_edit_real_files(tmp_path: Path) -> None:
    keyboard = tmp_path / "keyboard"
    keyboard.write_text('XKBMODEL="pc105"\nXKBLAYOUT="gb"\n')
    locales = tmp_path / "locale.gen"
    locales.write_text("# en_GB.UTF-8 UTF-8\n# en_GBxUTF-8 UTF-8\n# sr_RS@latin UTF-8\n")
    script = firstrun.script(FirstBoot(hostname="brig", keyboard="us,de",
                                       locale="en_GB.UTF-8"))
    # Only the keyboard and locale parts, pointed at the files above.
    start = script.index("sed -i 's/^# *")
    part = script[start:script.index("\nrm -f", start)]
    part = part.replace("/etc/locale.gen", str(locales))
    part = part.replace("/etc/default/keyboard", str(keyboard))
    part = "\n".join(line.strip() for line in part.splitlines()
                     if line.strip().startswith("sed "))  # no locale-gen on this machine
    done = subprocess.run(["bash", "-c", "set -e\n" + part], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert keyboard.read_text() == 'XKBMODEL="pc105"\nXKBLAYOUT="us,de"\n'
    # The dot is matched as a dot: the look-alike line stays commented.
    assert locales.read_text() == ("en_GB.UTF-8 UTF-8\n# en_GBxUTF-8 UTF-8\n"
                                   "# sr_RS@latin UTF-8\n")
