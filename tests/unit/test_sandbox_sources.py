"""Reading this machine's Debian mirror (deb822 and one-line forms) and rendering nodes' sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from pifleet.sandbox.sources import (
    Mirror,
    host_archives,
    host_mirror,
    host_security_uri,
    mirror_from_deb822,
    mirror_from_one_line,
    node_archives,
    node_sources,
    parse_deb822,
    security_from_deb822,
    shared_apt_settings,
)

DEBIAN_SOURCES = """\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def test_parse_deb822_stanzas_and_continuations() -> None:
    stanzas = parse_deb822("A: 1\nB: two\n  more\n\n\n# c\nA: 3\n")
    assert stanzas == [{"a": "1", "b": "two more"}, {"a": "3"}]


def test_mirror_from_deb822() -> None:
    mirror = mirror_from_deb822(DEBIAN_SOURCES)
    assert mirror == Mirror("http://mirror.example/debian", ("bookworm", "bookworm-updates"),
                            ("main", "contrib"))
    assert security_from_deb822(DEBIAN_SOURCES) == "http://mirror.example/debian-security"


def test_disabled_and_source_stanzas_are_skipped() -> None:
    text = ("Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
            "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\n\n"
            + DEBIAN_SOURCES)
    assert mirror_from_deb822(text).uri == "http://mirror.example/debian"  # type: ignore[union-attr]


@pytest.mark.parametrize("line, uri", [
    ("deb http://a.example/debian bookworm main", "http://a.example/debian"),
    ("deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
     "http://b.example/debian/ bookworm main contrib", "http://b.example/debian"),
])
def test_mirror_from_one_line(line: str, uri: str) -> None:
    text = "# comment\ndeb http://sec.example/debian-security bookworm-security main\n" + line
    mirror = mirror_from_one_line(text)
    assert mirror is not None and mirror.uri == uri and mirror.suites == ("bookworm",)


def apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_host_mirror_in_apts_order_sources_list_first(tmp_path: Path) -> None:
    folder = apt_dir(tmp_path, {"sources.list.d/debian.sources": DEBIAN_SOURCES})
    assert host_mirror(folder).uri == "http://mirror.example/debian"
    (folder / "sources.list").write_text("deb http://old.example/debian bookworm main\n")
    assert host_mirror(folder).uri == "http://old.example/debian"
    assert host_security_uri(folder) == "http://mirror.example/debian-security"
    (folder / "sources.list").unlink()
    (folder / "sources.list.d/debian.sources").unlink()
    with pytest.raises(LookupError, match="no Debian mirror"):
        host_mirror(folder)


def test_classic_lists_in_sources_list_d_count(tmp_path: Path) -> None:
    folder = apt_dir(tmp_path, {
        "sources.list": "# moved\n",
        "sources.list.d/b-debian.list": "deb http://deb.example/debian bookworm main\n"
                                        "deb http://deb.example/debian-security "
                                        "bookworm-security main\n",
        "sources.list.d/a-notes.txt": "deb http://not.read.example/debian bookworm main\n",
        "sources.list.d/c.list.disabled": "deb http://off.example/debian bookworm main\n"})
    assert [a.uri for a in host_archives(folder)] == ["http://deb.example/debian",
                                                     "http://deb.example/debian-security"]
    assert node_archives(folder) == ["http://deb.example/debian",
                                     "http://deb.example/debian-security"]


def test_other_peoples_repositories_are_not_debian_archives(tmp_path: Path) -> None:
    folder = apt_dir(tmp_path, {
        "sources.list": "deb https://cloud.example/apt cloud-sdk-bookworm main\n"
                        "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] "
                        "https://download.example/linux/debian bookworm stable\n",
        "sources.list.d/a-node.sources": "Types: deb\nURIs: https://node.example/node_20.x\n"
                                         "Suites: nodistro\nComponents: main\n"
                                         "Signed-By: /usr/share/keyrings/nodesource.gpg\n",
        "sources.list.d/debian.sources": DEBIAN_SOURCES})
    assert node_archives(folder) == ["http://mirror.example/debian",
                                     "http://mirror.example/debian-security"]


def test_node_sources_round_trip() -> None:
    mirror = Mirror("http://mirror.example/debian", ("bookworm",), ("main",))
    text = node_sources(mirror, "bookworm", "http://mirror.example/debian-security")
    assert mirror_from_deb822(text) == Mirror("http://mirror.example/debian",
                                              ("bookworm", "bookworm-updates"), ("main",))
    assert security_from_deb822(text) == "http://mirror.example/debian-security"
    assert "security" not in node_sources(mirror, "bookworm")


def test_shared_apt_settings_copies_only_relaxed_checks() -> None:
    dump = ('APT "";\nAcquire::Check-Valid-Until "false";\nAcquire::Check-Date "true";\n'
            'Acquire::Retries "3";\n')
    assert shared_apt_settings(dump) == ['Acquire::Check-Valid-Until "false";']
