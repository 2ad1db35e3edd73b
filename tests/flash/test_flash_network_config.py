"""network-config on a flashed card, checked by netplan's own parser (strict: unknown keys are
errors) and by cloud-init's own converter.

Debian 12's cloud-init (22.4) has no `cloud-init schema --schema-type network-config` (newer
releases do): `netplan generate` from Debian's netplan.io is the schema check here, and
`cloud-init devel net-convert` shows cloud-init itself reads the file (root)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from flashhelp import boot_volume, run

from pifleet.flash.bootconfig import wifi_psk

Packed = Callable[[str, str], Path]


def _flash(packed: Packed, out: Path, *extra: str) -> str:
    proc = run("flash", packed("raspios_trixie", "raw"), out, "--hostname", "brig",
               "--wifi-ssid", "lab", "--wifi-password", "correct horse", "--wifi-country",
               "DE", *extra)
    assert proc.returncode == 0, proc.stderr
    return boot_volume(out).read("network-config").decode()


def _netplan_generate(document: str, root: Path) -> subprocess.CompletedProcess[str]:
    (root / "etc" / "netplan").mkdir(parents=True)
    config = root / "etc" / "netplan" / "50-cloud-init.yaml"
    # cloud-init accepts the bare version-2 document; netplan wants it under `network:`.
    config.write_text(yaml.safe_dump({"network": yaml.safe_load(document)}))
    config.chmod(0o600)
    return subprocess.run(["netplan", "generate", "--root-dir", str(root)],
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("static", [False, True])
def test_network_config_passes_netplans_parser(packed: Packed, tmp_path: Path,
                                               static: bool) -> None:
    if shutil.which("netplan") is None:
        pytest.skip("netplan is not installed (scripts/setup installs netplan.io)")
    extra = (["--static-ip", "192.168.5.20/24", "--gateway", "192.168.5.1", "--dns",
              "192.168.5.1"] if static else [])
    document = _flash(packed, tmp_path / "card.img", *extra)
    root = tmp_path / "root"
    proc = _netplan_generate(document, root)
    assert proc.returncode == 0, proc.stderr
    wpa = (root / "run" / "netplan" / "wpa-wlan0.conf").read_text()
    assert f"psk={wifi_psk('lab', 'correct horse')}" in wpa and "country=DE" in wpa
    eth0 = (root / "run" / "systemd" / "network" / "10-netplan-eth0.network").read_text()
    if static:
        assert "Address=192.168.5.20/24" in eth0 and "Gateway=192.168.5.1" in eth0
        assert "DNS=192.168.5.1" in eth0
    else:
        assert "DHCP=ipv4" in eth0


def test_netplan_check_catches_a_wrong_key(tmp_path: Path) -> None:
    if shutil.which("netplan") is None:
        pytest.skip("netplan is not installed (scripts/setup installs netplan.io)")
    proc = _netplan_generate("version: 2\nethernets:\n  eth0:\n    dhcp: true\n", tmp_path)
    assert proc.returncode != 0 and "unknown key" in proc.stderr


def test_cloud_init_reads_the_network_config(packed: Packed, tmp_path: Path) -> None:
    if shutil.which("cloud-init") is None:
        pytest.skip("cloud-init is not installed (scripts/setup installs it)")
    document = _flash(packed, tmp_path / "card.img", "--static-ip", "192.168.5.20/24")
    source = tmp_path / "network-config"
    source.write_text(document)
    out = tmp_path / "converted"
    proc = subprocess.run(["cloud-init", "devel", "net-convert", "-p", str(source), "-k",
                           "yaml", "-d", str(out), "-D", "debian", "-O", "netplan"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    (written,) = out.rglob("*.yaml")
    converted = yaml.safe_load(written.read_text())["network"]
    assert converted["ethernets"]["eth0"]["addresses"] == ["192.168.5.20/24"]
    assert "lab" in converted["wifis"]["wlan0"]["access-points"]
