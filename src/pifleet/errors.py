"""Errors that decide the exit status, and plain words for the ones that come from elsewhere.

`BadInput` means nothing was changed anywhere (exit 2); `Failed` means a node or a step failed
after work began (exit 1). Every layer raises these; only the CLI turns them into exit codes.
"""

from __future__ import annotations

import re
import subprocess


class PifleetError(Exception):
    """Base of the errors pifleet reports to the user without a traceback."""

    exit_code = 1


class BadInput(PifleetError):
    """The user's input is wrong; nothing has been touched. Exit status 2."""

    exit_code = 2


class Failed(PifleetError):
    """Work began and a node or step failed. Exit status 1."""

    exit_code = 1


# Terminal escape sequences (colours, cursor moves) and other control characters: text from a
# node's console or a library must not repaint the user's terminal or break a JSON reader.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)?|\x1b.?")
# Includes what Python's splitlines() takes for a line break (\x1c-\x1e, \x85, U+2028/9).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROLS_AND_NEWLINES = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plain_text(text: str, *, one_line: bool = False) -> str:
    """`text` without terminal escape sequences; other control characters shown as `\\xNN`
    (newlines too with `one_line`)."""
    text = _ESCAPES.sub("", text)
    return (_CONTROLS_AND_NEWLINES if one_line else _CONTROLS).sub(_escaped, text)


def describe(exc: BaseException) -> str:
    """One line in pifleet's words for an error raised by Python or a library.

    `[Errno 2] No such file or directory: 'x'` becomes `x: no such file or directory`; a
    failed program names itself and its exit status. The error itself stays for `-v`.
    """
    if isinstance(exc, PifleetError):
        return str(exc)
    if isinstance(exc, subprocess.CalledProcessError):
        program = _program(exc.cmd)
        detail = exc.stderr or exc.output or ""
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace")
        last = detail.strip().splitlines()[-1:] if detail else []
        return f"{program} failed with exit status {exc.returncode}" + (
            f": {last[0]}" if last else "")
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"{_program(exc.cmd)} did not finish within {exc.timeout:g} s"
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc) or type(exc).__name__
        what = what[:1].lower() + what[1:]
        where = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
        return f"{' -> '.join(where)}: {what}" if where else what
    return str(exc) or type(exc).__name__


def _program(cmd: object) -> str:
    if isinstance(cmd, list | tuple) and cmd:
        return str(cmd[0])
    return str(cmd).split()[0] if str(cmd).strip() else "a program"
