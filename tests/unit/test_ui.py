"""Renderers: output lines stay whole; the summary names failed nodes and steps."""

from __future__ import annotations

import io

from rich.console import Console

from pifleet.events import Emitter, Event, Status
from pifleet.ui.live import LiveDisplay
from pifleet.ui.logfiles import NodeLogs
from pifleet.ui.summary import print_summary


def narrow_console(stream: io.StringIO) -> Console:
    return Console(file=stream, width=20, force_terminal=False, color_system=None)


def test_output_lines_are_never_wrapped_or_cut() -> None:
    stream = io.StringIO()
    display = LiveDisplay(narrow_console(stream))
    long = "word " * 40 + "[bold]not markup[/bold]"
    display(Event("black-pearl", "run", "output", Status.OUTPUT, message=long))
    assert stream.getvalue() == f"black-pearl: {long}\n"


def test_output_lines_off_a_terminal_are_written_byte_for_byte() -> None:
    stream = io.StringIO()
    display = LiveDisplay(narrow_console(io.StringIO()), narrow_console(stream), show_steps=False)
    display(Event("fregate", "run", "output", Status.OUTPUT, message="a\tb  \x1b[1m"))
    display(Event("fregate", "run", "command", Status.OK, message="exit status 0"))
    assert stream.getvalue() == "fregate: a\tb  \x1b[1m\n"


def test_summary_names_node_step_and_error() -> None:
    stream = io.StringIO()
    emit = Emitter()
    emit.emit("fregate", "trust", "connect", Status.FAILED, message="authentication refused")
    emit.emit("fregate", "trust", "later", Status.FAILED, message="second failure")
    print_summary(narrow_console(stream), emit.failures, 3, "trust")
    text = stream.getvalue()
    assert "1 of 3 node(s) failed: fregate" in text.replace("\n", " ")
    assert "fregate: trust/connect: authentication refused" in text
    assert "second failure" not in text


def test_node_logs_one_file_per_node(tmp_path) -> None:  # type: ignore[no-untyped-def]
    logs = NodeLogs("team1", root=tmp_path)
    logs(Event("laperouse", "run", "command", Status.OK, duration=1.0, message="exit status 0"))
    logs(Event(None, "trust", "fleet key", Status.OK))
    assert "run/command ok 1.00s: exit status 0" in (tmp_path / "team1/laperouse.log").read_text()
    assert (tmp_path / "team1/_local.log").exists()


def test_node_logs_keep_events_not_output_and_no_credentials(tmp_path) -> None:  # type: ignore[no-untyped-def]
    token = "abcdef.0123456789abcdef"
    logs = NodeLogs("team1", root=tmp_path)
    logs(Event("laperouse", "join", "command", Status.OUTPUT,
               message=f"kubeadm join 10.0.0.1:6443 --token {token}"))
    logs(Event("laperouse", "join", "token", Status.FAILED,
               message=f"kubeadm join 10.0.0.1:6443 --token {token} --discovery-token-ca-cert-"
                       "hash sha256:00ff | exit status 1"))
    logs(Event("laperouse", "run", "command", Status.FAILED,
               message="-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNz\n"
                       "-----END OPENSSH PRIVATE KEY-----, token: s3cr3t, password=hypriot"))
    text = (tmp_path / "team1/laperouse.log").read_text()
    assert token not in text and "b3BlbnNz" not in text and "s3cr3t" not in text
    assert "hypriot" not in text
    assert "join/token failed" in text and "sha256:00ff" in text  # the event itself stays
    assert "join/command output" not in text
