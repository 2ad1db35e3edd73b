"""binfmt_misc entries for emulated (arm64) nodes."""

from __future__ import annotations

from pathlib import Path

from pifleet.sandbox.emulation import parse_entry, ready, register_line

DEBIAN_ENTRY = """\
enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: PF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""


def test_parse_entry() -> None:
    entry = parse_entry(DEBIAN_ENTRY)
    assert entry["state"] == "enabled" and entry["flags"] == "PF"
    assert entry["interpreter"] == "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
    assert entry["magic"].startswith("7f454c46")


def test_register_line_escapes_magic_and_mask() -> None:
    line = register_line("pifleet-qemu-aarch64", parse_entry(DEBIAN_ENTRY), "FC")
    name, kind, offset, magic, mask, interpreter, flags = line.split(":")[1:]
    assert (name, kind, offset, flags) == ("pifleet-qemu-aarch64", "M", "0", "FC")
    assert magic.startswith("\\x7f\\x45\\x4c\\x46") and magic.count("\\x") == 20
    assert mask.count("\\x") == 20 and interpreter.endswith("aarch64-binfmt-P")


def test_ready_needs_fix_binary_and_credentials(tmp_path: Path) -> None:
    (tmp_path / "qemu-aarch64").write_text(DEBIAN_ENTRY)
    assert not ready("arm64", tmp_path)  # Debian's entry: no C, sudo would fail
    (tmp_path / "pifleet-qemu-aarch64").write_text(DEBIAN_ENTRY.replace("flags: PF",
                                                                        "flags: OCF"))
    assert ready("arm64", tmp_path)
    assert not ready("mips", tmp_path)
