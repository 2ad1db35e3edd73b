"""Ctrl-C or end of input at a prompt of `pifleet flash`: exit 2, nothing written (root)."""

from __future__ import annotations

import os
import pty
import time
from collections.abc import Callable
from pathlib import Path

from flashhelp import PIFLEET, digest, read_until, run

Packed = Callable[[str, str], Path]
Loop = Callable[..., str]
OLD = b"old card contents " * 4096


def _ctrl_c_at(prompt: bytes, args: list[str]) -> tuple[int, bytes]:
    """Run pifleet on a pseudo-terminal, press Ctrl-C at `prompt`; exit code and output.

    Python reads the terminal with fgets: a SIGINT that lands after the prompt is shown but
    before the read blocks is seen only at the next key. A user presses Ctrl-C again; so does
    this test (up to three times, a second apart), and it never waits without bound.
    """
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(str(PIFLEET), [str(PIFLEET), *args])
    status = None
    try:
        seen = read_until(fd, prompt, 30)
        assert prompt in seen, seen.decode(errors="replace")
        for _ in range(3):
            os.write(fd, b"\x03")  # the terminal turns it into SIGINT for pifleet
            deadline = time.monotonic() + 10
            while status is None and time.monotonic() < deadline:
                seen += read_until(fd, b"\x00never", 0.2)
                done, code = os.waitpid(pid, os.WNOHANG)
                status = code if done else None
            if status is not None:
                break
    finally:
        if status is None:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
    assert status is not None, "pifleet did not stop at Ctrl-C: " + seen.decode(
        errors="replace")
    return os.waitstatus_to_exitcode(status), seen


def test_ctrl_c_at_the_confirmation(packed: Packed, loop: Loop) -> None:
    device = loop(80, fill=OLD)
    before = digest(device)
    code, output = _ctrl_c_at(b"Write the image?", [
        "flash", str(packed("raspios_bookworm", "raw")), device, "--allow-non-removable"])
    assert code == 2, output.decode(errors="replace")
    assert b"nothing was written" in output and b"Aborted." not in output
    assert digest(device) == before


def test_end_of_input_at_the_confirmation(packed: Packed, loop: Loop) -> None:
    device = loop(80, fill=OLD)
    before = digest(device)
    proc = run("flash", packed("raspios_bookworm", "raw"), device, "--allow-non-removable")
    assert proc.returncode == 2, proc.stderr
    assert "nothing was written" in proc.stderr
    assert digest(device) == before


def test_ctrl_c_at_the_password_prompt(packed: Packed, tmp_path: Path) -> None:
    out = tmp_path / "card.img"
    code, output = _ctrl_c_at(b"Password", [
        "flash", str(packed("raspios_trixie", "raw")), str(out), "--hostname", "brig",
        "--password"])
    assert code == 2, output.decode(errors="replace")
    assert not out.exists()
