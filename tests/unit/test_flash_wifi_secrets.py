"""Wi-Fi secrets stay out of reprs; the passphrase is asked, not required on the command line."""

from __future__ import annotations

import subprocess
import sys

from pifleet.flash.bootconfig import FirstBoot, make_wifi, wifi_psk

PASSPHRASE = "correct horse battery"


def test_reprs_show_neither_passphrase_nor_key() -> None:
    wifi = make_wifi("lab", PASSPHRASE, "de")
    boot = FirstBoot(hostname="brig", wifi=wifi)
    psk = wifi_psk("lab", PASSPHRASE)
    for text in (repr(wifi), repr(boot), str(boot)):
        assert PASSPHRASE not in text and psk not in text
        assert "lab" in text


def _pifleet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pifleet", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60, check=False)


def test_ssid_without_passphrase_off_a_terminal_is_bad_input() -> None:
    proc = _pifleet("flash", "no-such.img", "out.img", "--wifi-ssid", "lab",
                    "--wifi-country", "DE", "--hostname", "brig")
    assert proc.returncode == 2, proc.stderr
    assert "--wifi-password" in proc.stderr and "terminal" in proc.stderr


def test_passphrase_without_ssid_is_bad_input() -> None:
    proc = _pifleet("flash", "no-such.img", "out.img", "--wifi-password", PASSPHRASE,
                    "--wifi-country", "DE")
    assert proc.returncode == 2 and "--wifi-ssid" in proc.stderr
