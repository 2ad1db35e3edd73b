"""`pifleet flash` into regular files: every container, every format, every fault."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import flashimages as images
import pytest
import yaml
from flashhelp import boot_volume, digest, fsck_fat, head_is_blank, run

from pifleet.errors import Failed
from pifleet.events import Emitter
from pifleet.flash import FirstBoot, Request, execute, hash_password, make_wifi, plan
from pifleet.flash.run import Progress

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0123456789abcdef0123456789abcdef01234567 me@lab"

Image = Callable[[str], Path]
Packed = Callable[[str, str], Path]


def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "id.pub"
    path.write_text(KEY + "\n")
    return path


@pytest.mark.parametrize("kind", ["raw", "xz", "gz", "bz2", "zst", "zip"])
def test_every_container_gives_an_identical_rootfs_and_a_clean_boot_partition(
        packed: Packed, tmp_path: Path, kind: str) -> None:
    source = packed("raspios_bookworm", kind)
    out = tmp_path / "card.img"
    proc = run("flash", source, out, "--hostname", "brig", "--ssh-key", key_file(tmp_path))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    layout = images.raspios_bookworm()
    assert images.root_partition(out, layout) == images.root_partition(
        packed("raspios_bookworm", "raw"), layout)
    fsck_fat(out, tmp_path)
    volume = boot_volume(out)
    script = volume.read("firstrun.sh").decode()
    assert "NEW_HOSTNAME=brig" in script and KEY in script
    cmdline = volume.read("cmdline.txt").decode()
    assert cmdline.count("\n") == 1 and cmdline.endswith("\n")
    assert cmdline.startswith(images.CMDLINE.strip() + " systemd.run=/boot/firstrun.sh ")
    assert out.stat().st_size == layout.size


@pytest.mark.parametrize(("layout", "expected"), [
    ("raspios_bookworm", "firstrun"),
    ("old_layout", "firstrun"),
    ("raspios_trixie", "cloud-init"),
    ("hypriot_17", "cloud-init"),
    ("hypriot_16", "device-init"),
    ("hypriot_old", "occidentalis"),
])
def test_auto_detection_picks_the_format_the_image_reads(
        packed: Packed, tmp_path: Path, layout: str, expected: str) -> None:
    out = tmp_path / "card.img"
    proc = run("flash", packed(layout, "xz"), out, "--hostname", "sloop")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert f"{expected} (chosen;" in proc.stderr
    volume = boot_volume(out)
    names = {n.lower() for n in volume.list()}
    cmdline = volume.read("cmdline.txt").decode()
    assert cmdline.count("\n") == 1
    if expected == "cloud-init":
        meta = yaml.safe_load(volume.read("meta-data"))
        assert meta["local-hostname"] == "sloop"
        assert meta["instance-id"].startswith("pifleet-")
        # Only Raspberry Pi OS is told on cmdline.txt where its NoCloud seed is.
        assert ("ds=nocloud;i=" + meta["instance-id"] in cmdline) == (layout == "raspios_trixie")
    elif expected == "device-init":
        assert yaml.safe_load(volume.read("device-init.yaml"))["hostname"] == "sloop"
    elif expected == "occidentalis":
        assert volume.read("occidentalis.txt").decode().startswith("hostname=sloop\n")
    else:
        assert "firstrun.sh" in names
    fsck_fat(out, tmp_path)


def test_user_data_passes_cloud_inits_own_schema_check(image: Image, tmp_path: Path) -> None:
    if shutil.which("cloud-init") is None:
        pytest.skip("cloud-init is not installed (scripts/setup installs it)")
    out = tmp_path / "card.img"
    boot = FirstBoot(hostname="brig", user="student", password_hash=hash_password("s3cret!"),
                     ssh_keys=(KEY,), wifi=make_wifi("lab", "correct horse", "DE"),
                     timezone="Europe/Berlin", locale="en_GB.UTF-8", keyboard="gb")
    checked = plan(Request(str(image("raspios_trixie")), [out], [boot]), Emitter())
    execute(checked, Emitter())
    user_data = tmp_path / "user-data"
    user_data.write_bytes(boot_volume(out).read("user-data"))
    proc = subprocess.run(["cloud-init", "schema", "--config-file", str(user_data)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Valid" in proc.stdout
    text = user_data.read_text()
    assert "s3cret!" not in text and "correct horse" not in text


def test_forcing_a_format_the_image_ignores_warns(packed: Packed, tmp_path: Path) -> None:
    out = tmp_path / "card.img"
    proc = run("flash", packed("raspios_bookworm", "gz"), out, "--hostname", "brig",
               "--format", "occidentalis")
    assert proc.returncode == 0, proc.stderr
    assert "warning: the image reads firstrun" in proc.stderr
    assert boot_volume(out).exists("occidentalis.txt")


def test_unknown_format_in_a_raw_image_is_bad_input(image: Image, tmp_path: Path) -> None:
    out = tmp_path / "card.img"
    proc = run("flash", image("bare"), out, "--hostname", "brig")
    assert proc.returncode == 2
    assert "--format" in proc.stderr
    assert not out.exists()


def test_unknown_format_in_a_compressed_image_leaves_no_partition_table(
        packed: Packed, tmp_path: Path) -> None:
    out = tmp_path / "card.img"
    proc = run("flash", packed("bare", "xz"), out, "--hostname", "brig")
    assert proc.returncode == 1
    assert "incomplete" in proc.stderr
    assert head_is_blank(out)


def test_format_none_writes_the_image_unchanged(image: Image, tmp_path: Path) -> None:
    out = tmp_path / "card.img"
    proc = run("flash", image("bare"), out, "--format", "none", "--hostname", "x")
    assert proc.returncode == 0, proc.stderr
    assert digest(out) == digest(image("bare"))


def test_wrong_sha256_of_the_given_file_writes_nothing(packed: Packed, tmp_path: Path) -> None:
    out = tmp_path / "card.img"
    out.write_bytes(b"previous contents" * 1000)
    before = digest(out)
    proc = run("flash", packed("raspios_bookworm", "xz"), out, "--sha256", "a" * 64)
    assert proc.returncode == 2
    assert "SHA-256" in proc.stderr and "nothing was written" in proc.stderr
    assert digest(out) == before


def test_right_sha256_of_the_given_file_is_accepted(packed: Packed, tmp_path: Path) -> None:
    source = packed("raspios_bookworm", "xz")
    proc = run("flash", source, tmp_path / "card.img", "--sha256", digest(source))
    assert proc.returncode == 0, proc.stderr


def test_wrong_raw_image_checksum_stops_before_the_partition_table(
        packed: Packed, tmp_path: Path) -> None:
    out = tmp_path / "card.img"
    proc = run("flash", packed("raspios_bookworm", "bz2"), out, "--image-sha256", "b" * 64)
    assert proc.returncode == 1
    assert "incomplete" in proc.stderr and "partition table" in proc.stderr
    assert head_is_blank(out)


def test_raw_image_checksum_is_checked_while_writing(packed: Packed, tmp_path: Path) -> None:
    raw = packed("raspios_bookworm", "raw")
    proc = run("flash", packed("raspios_bookworm", "zst"), tmp_path / "card.img",
               "--image-sha256", digest(raw), "--hostname", "brig")
    assert proc.returncode == 0, proc.stderr


def test_truncated_archive_fails_with_an_incomplete_card(packed: Packed, tmp_path: Path) -> None:
    source = packed("raspios_bookworm", "xz")
    broken = tmp_path / "broken.img.gz"
    data = packed("raspios_bookworm", "gz").read_bytes()
    broken.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "card.img"
    proc = run("flash", broken, out)
    assert proc.returncode == 1, proc.stderr
    assert "incomplete" in proc.stderr
    assert head_is_blank(out)
    # A corrupt xz (bad index) is refused before writing.
    bad = tmp_path / "bad.img.xz"
    bad.write_bytes(source.read_bytes()[:-20])
    proc = run("flash", bad, tmp_path / "other.img")
    assert proc.returncode == 2 and "bad.img.xz" in proc.stderr
    assert not (tmp_path / "other.img").exists()


def test_the_image_itself_is_not_a_target(image: Image, tmp_path: Path) -> None:
    copy = tmp_path / "copy.img"
    copy.write_bytes(image("bare").read_bytes())
    before = digest(copy)
    proc = run("flash", copy, copy, "--format", "none")
    assert proc.returncode == 2 and "the image itself" in proc.stderr
    assert digest(copy) == before


def test_multi_block_xz_decodes_in_parallel_and_checks_integrity(
        image: Image, tmp_path: Path) -> None:
    raw = image("raspios_bookworm")
    multi = tmp_path / "multi.img.xz"
    with multi.open("wb") as handle:
        subprocess.run(["xz", "-T2", "-1", "--block-size=4MiB", "-c", str(raw)], check=True,
                       stdout=handle)
    from pifleet.flash.compress import inspect

    assert inspect(multi).blocks > 1
    out = tmp_path / "card.img"
    proc = run("flash", multi, out, "--hostname", "brig")
    assert proc.returncode == 0, proc.stderr
    layout = images.raspios_bookworm()
    assert images.root_partition(out, layout) == images.root_partition(raw, layout)
    # Flip one byte inside the compressed data: xz's block check catches it while writing.
    data = bytearray(multi.read_bytes())
    data[len(data) // 2] ^= 0xFF
    multi.write_bytes(bytes(data))
    proc = run("flash", multi, out, "--hostname", "brig")
    assert proc.returncode == 1, proc.stderr
    assert "corrupt xz data" in proc.stderr and "incomplete" in proc.stderr
    assert head_is_blank(out)


def test_zip_with_two_images_and_unknown_image_are_bad_input(
        image: Image, tmp_path: Path) -> None:
    import zipfile

    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a.img", b"1")
        archive.writestr("b.img", b"2")
    proc = run("flash", two, tmp_path / "card.img")
    assert proc.returncode == 2 and "two.zip" in proc.stderr
    proc = run("flash", tmp_path / "missing.img.xz", tmp_path / "card.img")
    assert proc.returncode == 2 and "missing.img.xz" in proc.stderr
    assert not (tmp_path / "card.img").exists()


def _bmap_for(raw: Path, tmp_path: Path) -> Path:
    out = tmp_path / (raw.stem + ".bmap")
    subprocess.run(["bmaptool", "create", "-o", str(out), str(raw)], check=True,
                   capture_output=True)
    return out


@pytest.mark.parametrize("kind", ["xz", "xzb", "raw"])
def test_bmap_writes_only_mapped_ranges_into_a_sparse_file(
        packed: Packed, tmp_path: Path, kind: str) -> None:
    raw = packed("raspios_bookworm", "raw")
    bmap = _bmap_for(raw, tmp_path)
    out = tmp_path / "card.img"
    proc = run("flash", packed("raspios_bookworm", kind), out, "--bmap", bmap, "--hostname",
               "brig")
    assert proc.returncode == 0, proc.stderr
    assert "(bmap;" in proc.stderr
    layout = images.raspios_bookworm()
    assert images.root_partition(out, layout) == images.root_partition(raw, layout)
    assert out.stat().st_blocks * 512 < layout.size // 2  # sparse
    fsck_fat(out, tmp_path)


def test_bmap_checksum_mismatch_stops_before_the_partition_table(
        packed: Packed, tmp_path: Path) -> None:
    raw = packed("raspios_bookworm", "raw")
    bmap = _bmap_for(raw, tmp_path)
    text = bmap.read_text()
    # Spoil the checksum of the last range (the root file system's data).
    position = text.rindex('chksum="') + len('chksum="')
    spoiled = text[:position] + ("0" if text[position] != "0" else "1") + text[position + 1:]
    bmap.write_text(spoiled)
    out = tmp_path / "card.img"
    proc = run("flash", packed("raspios_bookworm", "xz"), out, "--bmap", bmap)
    assert proc.returncode == 1
    assert "bmap checksum mismatch" in proc.stderr and "incomplete" in proc.stderr
    assert head_is_blank(out)


def test_unreadable_bmap_is_bad_input(packed: Packed, tmp_path: Path) -> None:
    bmap = tmp_path / "x.bmap"
    bmap.write_text("not xml")
    out = tmp_path / "card.img"
    proc = run("flash", packed("raspios_bookworm", "xz"), out, "--bmap", bmap)
    assert proc.returncode == 2 and "x.bmap" in proc.stderr
    assert not out.exists()


def test_interrupted_write_leaves_no_partition_table(image: Image, tmp_path: Path) -> None:
    out = tmp_path / "card.img"
    checked = plan(Request(str(image("raspios_bookworm")), [out], [FirstBoot("brig")]),
                   Emitter())
    calls = []

    def interrupt(what: str, done: int, total: int | None) -> None:
        calls.append(done)
        if what == "write" and done > 8 * images.MIB:
            raise KeyboardInterrupt

    progress: Progress = interrupt
    with pytest.raises(Failed, match="interrupted"):
        execute(checked, Emitter(), progress)
    assert head_is_blank(out)
    assert calls


def test_several_cards_from_one_stream_each_with_its_own_hostname(
        packed: Packed, tmp_path: Path) -> None:
    outs = [tmp_path / f"card{i}.img" for i in range(3)]
    proc = run("flash", packed("hypriot_17", "xz"), *outs, "--hostname", "brig", "--hostname",
               "sloop", "--hostname", "ketch")
    assert proc.returncode == 0, proc.stderr
    names = [yaml.safe_load(boot_volume(o).read("meta-data"))["local-hostname"] for o in outs]
    assert names == ["brig", "sloop", "ketch"]
    ids = {yaml.safe_load(boot_volume(o).read("meta-data"))["instance-id"] for o in outs}
    assert len(ids) == 3
    layout = images.hypriot_17()
    roots = {images.root_partition(o, layout) for o in outs}
    assert len(roots) == 1


def test_json_output_is_event_lines(packed: Packed, tmp_path: Path) -> None:
    import json

    proc = run("--json", "flash", packed("hypriot_16", "gz"), tmp_path / "c.img",
               "--hostname", "brig")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    steps = [(e["step"], e["status"]) for e in events]
    assert ("partition-table", "ok") in steps
    assert all(set(e) >= {"node", "phase", "step", "status", "changed", "duration", "message"}
               for e in events)


def test_password_is_never_in_the_output_or_on_the_card_in_clear(
        packed: Packed, tmp_path: Path) -> None:
    out = tmp_path / "card.img"
    proc = run("flash", packed("raspios_trixie", "xz"), out, "--hostname", "brig",
               "--password", "--wifi-ssid", "lab", "--wifi-password", "wifi-secret-1",
               "--wifi-country", "DE", stdin="pass-secret-1\npass-secret-1\n")
    assert proc.returncode == 0, proc.stderr
    assert "pass-secret-1" not in proc.stdout + proc.stderr
    volume = boot_volume(out)
    for name in ("user-data", "network-config"):
        text = volume.read(name).decode()
        assert "pass-secret-1" not in text and "wifi-secret-1" not in text
    assert "$6$" in volume.read("user-data").decode()
    assert os.stat(out).st_size == images.raspios_trixie().size
