"""`--wifi-ssid` without `--wifi-password` on a terminal: the passphrase is asked (root)."""

from __future__ import annotations

import os
import pty
from collections.abc import Callable
from pathlib import Path

from flashhelp import PIFLEET, boot_volume, read_until

from pifleet.flash.bootconfig import wifi_psk

PASSPHRASE = "correct horse battery"


def test_passphrase_is_asked_on_the_terminal(packed: Callable[[str, str], Path],
                                             tmp_path: Path) -> None:
    out = tmp_path / "card.img"
    args = [str(PIFLEET), "flash", str(packed("raspios_trixie", "raw")), str(out),
            "--hostname", "brig", "--wifi-ssid", "lab", "--wifi-country", "DE"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: pifleet with the pseudo-terminal as its terminal
        os.execv(args[0], args)
    try:
        prompt = read_until(fd, b"passphrase", 30)
        assert b"Wi-Fi passphrase for lab" in prompt
        os.write(fd, PASSPHRASE.encode() + b"\r")
        rest = read_until(fd, b"\x00never", 60)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, rest.decode(errors="replace")
    assert PASSPHRASE.encode() not in prompt + rest  # echo was off
    network = boot_volume(out).read("network-config").decode()
    assert wifi_psk("lab", PASSPHRASE) in network
    assert PASSPHRASE not in network
