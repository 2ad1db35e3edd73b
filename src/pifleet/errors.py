"""Errors that decide the exit status.

`BadInput` means nothing was changed anywhere (exit 2); `Failed` means a node or a step failed
after work began (exit 1). Every layer raises these; only the CLI turns them into exit codes.
"""

from __future__ import annotations


class PifleetError(Exception):
    """Base of the errors pifleet reports to the user without a traceback."""

    exit_code = 1


class BadInput(PifleetError):
    """The user's input is wrong; nothing has been touched. Exit status 2."""

    exit_code = 2


class Failed(PifleetError):
    """Work began and a node or step failed. Exit status 1."""

    exit_code = 1
