"""`pifleet flash` start-up: the package's names load on first use, and a flash of a local
file without first-boot files does not import what only other runs need."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pifleet.flash as flash


def test_every_exported_name_resolves() -> None:
    for name in flash.__all__:
        assert getattr(flash, name) is not None, name


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = flash.no_such_name  # type: ignore[attr-defined]


def test_flash_path_leaves_heavy_modules_unloaded() -> None:
    # What `pifleet flash IMAGE TARGET --format none` runs through, in a fresh interpreter.
    code = (
        "import sys\n"
        "from pifleet import flash as core\n"
        "import pifleet.cli.flash\n"
        "core.Request, core.Policy, core.plan, core.execute, core.for_targets, core.Common\n"
        "from pifleet.flash import writer, compress, bmap, targets, sources\n"
        "heavy = ['yaml', 'urllib.request', 'rich.progress', 'plistlib']\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""
