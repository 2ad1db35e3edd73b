"""`--unmount` takes filesystems off only after the confirmation; a plan changes nothing (root)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from flashhelp import run

from pifleet.events import Emitter
from pifleet.flash import run as flash_run
from pifleet.flash import targets

Packed = Callable[[str, str], Path]
Loop = Callable[..., str]


def _mounted(loop: Loop, size_mib: int, where: Path) -> str:
    device = loop(size_mib)
    subprocess.run(["mkfs.ext4", "-q", "-F", device], check=True, capture_output=True)
    where.mkdir()
    done = subprocess.run(["mount", device, str(where)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.decode().strip()}")
    loop.mounts.append(where)  # type: ignore[attr-defined]
    return device


def _is_mounted(where: Path) -> bool:
    return str(where) in Path("/proc/self/mounts").read_text()


def test_declined_confirmation_leaves_the_mount(packed: Packed, loop: Loop,
                                               tmp_path: Path) -> None:
    mount = tmp_path / "mnt"
    device = _mounted(loop, 80, mount)
    proc = run("flash", packed("raspios_bookworm", "xz"), device, "--allow-non-removable",
               "--unmount", stdin="n\n")
    assert proc.returncode == 2, proc.stderr
    assert "will unmount" in proc.stderr and str(mount) in proc.stderr
    assert _is_mounted(mount)


def test_too_small_with_unmount_is_refused_still_mounted(packed: Packed, loop: Loop,
                                                        tmp_path: Path) -> None:
    mount = tmp_path / "mnt"
    device = _mounted(loop, 32, mount)
    proc = run("flash", packed("raspios_bookworm", "xz"), device, "--allow-non-removable",
               "--unmount", "--yes")
    assert proc.returncode == 2 and "too small" in proc.stderr
    assert _is_mounted(mount)


def test_plan_only_notes_mounts_and_release_takes_them_off(packed: Packed, loop: Loop,
                                                          tmp_path: Path) -> None:
    mount = tmp_path / "mnt"
    device = _mounted(loop, 80, mount)
    request = flash_run.Request(image=str(packed("raspios_bookworm", "raw")),
                                targets=[Path(device)], boots=[None],
                                policy=targets.Policy(allow_non_removable=True, unmount=True))
    plan = flash_run.plan(request, Emitter())
    assert _is_mounted(mount)
    assert plan.targets[0].unmount == (str(mount),)
    targets.release(plan.targets)
    assert not _is_mounted(mount)
    assert plan.targets[0].unmount == ()
    targets.release(plan.targets)  # a second call has nothing left to do
