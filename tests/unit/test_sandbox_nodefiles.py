"""What a node's upper layer gets: Pi files, the account, apt settings, vcgencmd stand-in."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pifleet.sandbox.nodefiles import (
    VCGENCMD,
    VCGENCMD_STATE,
    Layer,
    NodeConfig,
    add_account_lines,
    apt_conf,
    cmdline_txt,
    hosts_file,
    personalize,
)

BASE_FILES = {
    "passwd": "root:x:0:0:root:/root:/bin/bash\n",
    "shadow": "root:*:19000:0:99999:7:::\n",
    "group": "root:x:0:\nsudo:x:27:\nusers:x:100:\n",
    "gshadow": "root:*::\nsudo:*::\nusers:*::\n",
}


def test_cmdline_is_one_line_and_stable() -> None:
    text = cmdline_txt("laperouse")
    assert text.endswith("\n") and text.count("\n") == 1
    assert "root=PARTUUID=" in text and "rootwait" in text
    assert text == cmdline_txt("laperouse") != cmdline_txt("fregate")


def test_hosts_names_the_node() -> None:
    assert "127.0.1.1\tfregate\n" in hosts_file("fregate")


def test_account_lines_add_pirate_to_sudo_once() -> None:
    once = add_account_lines(BASE_FILES, "pirate", 1000, "$6$salt$hash", ("sudo",))
    assert "pirate:x:1000:1000:,,,:/home/pirate:/bin/bash" in once["passwd"].splitlines()
    assert "pirate:$6$salt$hash:19000:0:99999:7:::" in once["shadow"].splitlines()
    assert "sudo:x:27:pirate" in once["group"].splitlines()
    assert "sudo:*::pirate" in once["gshadow"].splitlines()
    assert "users:x:100:" in once["group"].splitlines()  # other groups untouched
    assert add_account_lines(once, "pirate", 1000, "$6$other", ("sudo",)) == once


def test_apt_conf_goes_direct_to_the_package_server() -> None:
    text = apt_conf("http://10.213.5.1:3142", "10.213.5.1", ('Acquire::Check-Date "false";',))
    assert 'Acquire::http::Proxy "http://10.213.5.1:3142";' in text
    assert 'Acquire::https::Proxy "http://10.213.5.1:3142";' in text
    assert 'Acquire::http::Proxy::10.213.5.1 "DIRECT";' in text
    assert text.endswith('Acquire::Check-Date "false";\n')


def _vcgencmd(tmp_path: Path, *args: str, state: str | None) -> subprocess.CompletedProcess[str]:
    state_file = tmp_path / "state"
    if state is not None:
        state_file.write_text(state)
    script = tmp_path / "vcgencmd"
    script.write_text(VCGENCMD.replace("/" + VCGENCMD_STATE, str(state_file)))
    return subprocess.run(["sh", str(script), *args], capture_output=True, text=True)


@pytest.mark.parametrize("state, command, expected", [
    (None, "measure_temp", "temp=47.2'C"),
    (None, "get_throttled", "throttled=0x0"),
    ("temp=47.2\nthrottled=0x0\nthrottled=0x50005\n", "get_throttled", "throttled=0x50005"),
    ("temp=81.3\n", "measure_temp", "temp=81.3'C"),
])
def test_vcgencmd_stand_in(tmp_path: Path, state: str | None, command: str,
                           expected: str) -> None:
    result = _vcgencmd(tmp_path, command, state=state)
    assert result.returncode == 0 and result.stdout == expected + "\n"


def test_vcgencmd_unknown_command_fails(tmp_path: Path) -> None:
    result = _vcgencmd(tmp_path, "get_camera", state=None)
    assert result.returncode != 0 and result.stdout.startswith("error=")


def _fake_base(root: Path) -> Path:
    base = root / "base"
    for name, text in BASE_FILES.items():
        (base / "etc").mkdir(parents=True, exist_ok=True)
        (base / "etc" / name).write_text(text)
    (base / "etc/shadow").chmod(0o640)
    (base / "etc/ssh").mkdir()
    (base / "etc/skel").mkdir()
    (base / "etc/skel/.bashrc").write_text("# bash\n")
    (base / "etc/apt").mkdir(mode=0o750)
    return base


def test_layer_copies_folder_modes_from_the_base(tmp_path: Path) -> None:
    base = _fake_base(tmp_path)
    (base / "etc/apt").chmod(0o750)
    layer = Layer(base, tmp_path / "upper")
    uid, gid = os.getuid(), os.getgid()
    layer.write("etc/apt/apt.conf.d/x", "y\n", owner=(uid, gid))
    assert (tmp_path / "upper/etc/apt").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "upper/etc/apt/apt.conf.d").stat().st_mode & 0o777 == 0o755
    layer.write("etc/shadow", "new\n", owner=(uid, gid))
    assert (tmp_path / "upper/etc/shadow").stat().st_mode & 0o777 == 0o640


@pytest.mark.skipif(os.geteuid() != 0, reason="sets file owners (root)")
def test_personalize_writes_a_whole_node_and_repeats_safely(tmp_path: Path) -> None:
    base, upper = _fake_base(tmp_path), tmp_path / "upper"
    config = NodeConfig(name="fregate", index=2, address="10.213.5.12", gateway="10.213.5.1",
                        apt_proxy="http://10.213.5.1:3142", packages_host="10.213.5.1",
                        sources="Types: deb\n")
    personalize(base, upper, config, "$6$salt$hash")
    assert (upper / "etc/hostname").read_text() == "fregate\n"
    machine_id = (upper / "etc/machine-id").read_text()
    assert len(machine_id.strip()) == 32
    keys = sorted(p.name for p in (upper / "etc/ssh").glob("ssh_host_*_key"))
    assert keys == ["ssh_host_ecdsa_key", "ssh_host_ed25519_key", "ssh_host_rsa_key"]
    ed25519 = (upper / "etc/ssh/ssh_host_ed25519_key").read_bytes()
    assert (upper / "home/pirate").stat().st_uid == 1000
    assert (upper / "home/pirate/.bashrc").exists()
    assert os.access(upper / "usr/bin/vcgencmd", os.X_OK)
    assert (upper / "boot/firmware/config.txt").exists()
    assert "pirate" in (upper / "etc/group").read_text().split("sudo:x:27:")[1].split("\n")[0]
    # Again (a restart after a crash): same identity, nothing duplicated.
    personalize(base, upper, config, "$6$salt$hash")
    assert (upper / "etc/machine-id").read_text() == machine_id
    assert (upper / "etc/ssh/ssh_host_ed25519_key").read_bytes() == ed25519
    lines = (upper / "etc/passwd").read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["root", "pirate"]
