"""How the command line reports errors: exit codes, `--json` error objects, pifleet's own words.

Every case runs the real entry point in a child process, as a user or a script would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest

GOOD = """\
name: lab
nodes:
  - {name: laperouse, address: 127.0.0.1, role: control-plane}
  - {name: fregate, address: 127.0.0.2}
ssh: {port: 1}
"""


def pifleet(*args: str, cwd: Path, env: dict[str, str] | None = None,
            stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The real CLI, with $PIFLEET_FLEET unset unless `env` sets it."""
    base = {k: v for k, v in os.environ.items() if k != "PIFLEET_FLEET"}
    return subprocess.run([sys.executable, "-m", "pifleet", *args], cwd=cwd,
                          env={**base, **(env or {})}, input=stdin, capture_output=True,
                          text=True, timeout=120, check=False)


def json_error(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """The error object a `--json` run ends with (every stdout line must be JSON)."""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines, f"stdout is empty; stderr: {result.stderr}"
    last = lines[-1]
    assert last["status"] == "error" and last["exit_code"] == result.returncode, last
    assert isinstance(last["message"], str) and last["message"]
    return last


# --json: every failure is also one JSON object on stdout.

@pytest.mark.parametrize("args", [
    ["run", "--", "true"],                     # no fleet file
    ["trust"],
    ["nosuchcommand"],                         # usage error, before any command runs
    ["run"],                                   # missing argument
    ["names", "0"],                            # bad count
    ["init"],                                  # no --node and no terminal
    ["flash", "nosuch.img", "out.img"],
    ["sandbox", "down", "--dir", "nosuch"],
])
def test_json_error_object_on_stdout(tmp_path: Path, args: list[str]) -> None:
    result = pifleet("--json", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    error = json_error(result)
    assert "Traceback" not in result.stderr
    # The human message is still on stderr, once.
    assert str(error["message"]).splitlines()[0] in result.stderr


def test_json_error_object_after_a_node_failed(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(GOOD)
    from pifleet.fleet import load_fleet
    from pifleet.remote.keys import ensure_key

    ensure_key(load_fleet(tmp_path / "fleet.yaml"))  # trusted: key made, host keys pinned
    known = tmp_path / ".pifleet" / "known_hosts"
    key = paramiko.ECDSAKey.generate()
    known.write_text("".join(f"[{a}]:1 {key.get_name()} {key.get_base64()}\n"
                             for a in ("127.0.0.1", "127.0.0.2")))
    result = pifleet("--json", "run", "--", "true", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    error = json_error(result)
    assert "laperouse" in str(error["message"]) and "fregate" in str(error["message"])


# `names` and the fleet file.

def test_names_refuses_a_missing_fleet_given_explicitly(tmp_path: Path) -> None:
    result = pifleet("--fleet", "nosuch.yaml", "names", cwd=tmp_path)
    assert result.returncode == 2 and "nosuch.yaml" in result.stderr and not result.stdout
    through_env = pifleet("names", cwd=tmp_path, env={"PIFLEET_FLEET": "nosuch.yaml"})
    assert through_env.returncode == 2 and "nosuch.yaml" in through_env.stderr


@pytest.mark.parametrize("text", ["name: lab\nnodes: [\n", "", "name: lab\nnodes: []\n"])
def test_names_refuses_a_broken_fleet(tmp_path: Path, text: str) -> None:
    (tmp_path / "broken.yaml").write_text(text)
    result = pifleet("--fleet", "broken.yaml", "names", cwd=tmp_path)
    assert result.returncode == 2 and "broken.yaml" in result.stderr
    # The default file is read the same way when it is there.
    (tmp_path / "fleet.yaml").write_text(text)
    assert pifleet("names", cwd=tmp_path).returncode == 2


def test_names_without_any_fleet_file_suggests_from_the_whole_list(tmp_path: Path) -> None:
    result = pifleet("names", "2", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "laperouse\nblack-pearl\n")


# --nodes: an empty or unknown name is bad input, and nothing is contacted.

@pytest.mark.parametrize("value", ["", ",", "laperouse,", " ", "nosuch", "laperouse,nosuch"])
@pytest.mark.parametrize("command", [["run", "--nodes"], ["trust", "--nodes"]])
def test_nodes_option_refuses_empty_and_unknown_names(tmp_path: Path, command: list[str],
                                                      value: str) -> None:
    (tmp_path / "fleet.yaml").write_text(GOOD)
    tail = ["--", "true"] if command[0] == "run" else []
    result = pifleet(*command, value, *tail, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "--nodes" in result.stderr or "nosuch" in result.stderr
    assert not (tmp_path / ".pifleet").exists()  # no key made, nothing pinned


# run before trust: bad input, nothing contacted.

def test_run_before_trust_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(GOOD)
    result = pifleet("run", "--", "true", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "run `pifleet trust` first" in result.stderr
    assert "laperouse" in result.stderr and "fregate" in result.stderr
    assert "Traceback" not in result.stderr
    # A fleet key alone (left by a trust that reached no node) proves nothing.
    from pifleet.fleet import load_fleet
    from pifleet.remote.keys import ensure_key

    ensure_key(load_fleet(tmp_path / "fleet.yaml"))
    assert pifleet("run", "--", "true", cwd=tmp_path).returncode == 2


# Messages in pifleet's words, shown once.

def test_fleet_file_messages_have_no_library_words(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(
        "name: lab\nnodes:\n"
        "  - {name: Black_Pearl, address: 10.0.0.1}\n"
        "  - {name: fregate, address: 10.0.0.2, role: master}\n"
        "  - {name: [x], address: 10.0.0.3, role: chief}\n"
        "ssh: {port: twenty-two}\n"
        "kubernetes: {pod_cidr: 10.244.0.0/33, cni: calico}\n")
    result = pifleet("run", "--", "true", cwd=tmp_path)
    assert result.returncode == 2
    err = result.stderr
    for internal in ("Input should", "valid string", "valid integer", "Value error",
                     "pydantic", "errors.pydantic", "IPv4Network"):
        assert internal not in err, err
    # role: master is the practical's word: say so first, and no missing-control-plane complaint.
    assert "use `role: control-plane`" in err
    assert "no node has `role: control-plane`" not in err
    assert "under Black_Pearl" not in err
    assert "black-pearl" in err  # the suggested valid name


def test_missing_control_plane_suggestion_names_a_valid_node(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(
        "name: lab\nnodes:\n  - {name: Black_Pearl, address: 10.0.0.1}\n"
        "  - {name: fregate, address: 10.0.0.2}\n")
    result = pifleet("run", "--", "true", cwd=tmp_path)
    assert result.returncode == 2
    assert "Black_Pearl!" not in result.stderr and "under Black_Pearl" not in result.stderr
    assert "no node has `role: control-plane`" in result.stderr


def test_a_directory_given_as_the_image_says_so(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    result = pifleet("flash", "images", "out.img", cwd=tmp_path)
    assert result.returncode == 2
    assert "images: is a directory" in result.stderr
    assert "no such image file" not in result.stderr


def test_flash_errors_are_printed_once(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    result = pifleet("flash", "images", "out.img", cwd=tmp_path)
    assert result.stderr.count("is a directory") == 1, result.stderr
    missing = pifleet("flash", "nosuch.img", "out.img", cwd=tmp_path)
    assert missing.stderr.count("nosuch.img") == 1, missing.stderr


def test_local_file_errors_are_in_pifleet_words(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").mkdir()  # a folder where the fleet file should be
    result = pifleet("run", "--", "true", cwd=tmp_path)
    assert result.returncode == 2
    assert "[Errno" not in result.stderr and "fleet.yaml" in result.stderr


def test_messages_carry_no_terminal_codes(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text("name: \x1b[31mred\x1b[0m\nnodes: []\n")
    result = pifleet("run", "--", "true", cwd=tmp_path)
    assert result.returncode == 2 and "\x1b" not in result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_download_errors_are_in_pifleet_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from pifleet.cli import cli
    from pifleet.cli.context import run_guarded

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = str(tmp_path / "out.img")

    def no_resolver(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with monkeypatch.context() as patched:
        patched.setattr(socket, "getaddrinfo", no_resolver)
        assert run_guarded(cli, ["flash", "http://images.example/pi.img", out]) == 2
    err = capsys.readouterr().err
    assert "name resolution failed for images.example; check the URL or the network" in err
    assert "urlopen" not in err and "Errno" not in err
    with monkeypatch.context() as patched:
        patched.setattr(socket, "getaddrinfo", no_resolver)
        assert run_guarded(cli, ["-v", "flash", "http://images.example/pi.img", out]) == 2
    assert "underlying error: socket.gaierror: [Errno -2]" in capsys.readouterr().err  # -v
    port = _closed_port()
    assert run_guarded(cli, ["flash", f"http://127.0.0.1:{port}/pi.img", out]) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port} refused the connection" in err and "Errno" not in err


def test_an_unexpected_error_is_one_line_and_details_come_with_v(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from pifleet.cli import cli
    from pifleet.cli.context import run_guarded

    def broken(*args: object, **kwargs: object) -> list[str]:
        raise RuntimeError("something pifleet did not expect")

    monkeypatch.setattr("pifleet.cli.names.suggest_names", broken)
    monkeypatch.chdir(tmp_path)
    assert run_guarded(cli, ["--json", "names"]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "internal error" in captured.err
    assert json.loads(captured.out.splitlines()[-1])["exit_code"] == 1
    assert run_guarded(cli, ["-v", "names"]) == 1
    assert "underlying error: builtins.RuntimeError: something pifleet did not expect (at " \
        in capsys.readouterr().err


def test_os_errors_read_as_plain_words() -> None:
    from pifleet.errors import describe

    error = PermissionError(13, "Permission denied", "/dev/sdz")
    assert describe(error) == "/dev/sdz: permission denied"
    failed = subprocess.CalledProcessError(1, ["mkfs.vfat", "x"], stderr="mkfs: no space\n")
    assert describe(failed) == "mkfs.vfat failed with exit status 1: mkfs: no space"
    assert describe(subprocess.TimeoutExpired(["lsblk"], 5)) == "lsblk did not finish within 5 s"
