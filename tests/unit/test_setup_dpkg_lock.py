"""scripts/setup waits for another package manager instead of failing on the dpkg lock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

WAITER = Path(__file__).resolve().parents[2] / "scripts" / "wait-for-dpkg-lock"
# Takes a POSIX lock as dpkg and apt do, says so, holds it for argv[2] seconds.
HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o640)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


@contextmanager
def held(path: Path | str, seconds: float) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def wait(env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    done = subprocess.run([sys.executable, str(WAITER)], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60, check=False)
    return done, time.monotonic() - began


def test_waits_while_the_lock_is_held_and_says_by_whom(tmp_path: Path) -> None:
    lock = tmp_path / "lock-frontend"
    with held(lock, 2.0) as holder:
        done, took = wait({"PIFLEET_APT_LOCKS": str(lock)})
    assert done.returncode == 0, done.stderr
    assert took >= 1.0
    assert f"{lock} is held by pid {holder.pid}" in done.stderr
    assert "free again" in done.stderr


def test_gives_up_after_the_limit_with_a_clear_message(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    with held(lock, 30.0):
        done, took = wait({"PIFLEET_APT_LOCKS": str(lock), "PIFLEET_APT_LOCK_WAIT": "1"})
    assert done.returncode == 1 and took < 10
    assert "gave up waiting" in done.stderr and "run scripts/setup again" in done.stderr


def test_a_free_lock_costs_nothing(tmp_path: Path) -> None:
    (tmp_path / "lock").touch()
    done, took = wait({"PIFLEET_APT_LOCKS": f"{tmp_path / 'lock'}:{tmp_path / 'missing'}"})
    assert (done.returncode, done.stderr) == (0, "") and took < 5


def test_the_real_dpkg_frontend_lock(tmp_path: Path) -> None:
    real = Path("/var/lib/dpkg/lock-frontend")
    if os.geteuid() != 0 or not real.exists():
        pytest.skip("needs root and dpkg")
    with held(real, 1.5):
        done, _ = wait({"PIFLEET_APT_LOCKS": ""})
    assert done.returncode == 0, done.stderr
    assert f"{real} is held by pid" in done.stderr
