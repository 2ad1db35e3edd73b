"""What the sandbox reads back from its nodes for messages: plain text only."""

from __future__ import annotations

from pathlib import Path

from pifleet.sandbox.runtime import console_tail
from pifleet.sandbox.state import node_dir


def test_console_tail_drops_terminal_codes(tmp_path: Path) -> None:
    console = node_dir(tmp_path, "fregate") / "console.log"
    console.parent.mkdir(parents=True)
    console.write_text("[\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39mssh.service\x1b[0m.\n"
                       "\x1b]0;title\x07fregate login: \r\n\n")
    assert console_tail(tmp_path, "fregate") == "[  OK  ] Started ssh.service. / fregate login:"
