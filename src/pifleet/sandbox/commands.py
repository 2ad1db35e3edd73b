"""Running host commands: one place that turns a failing command into a readable error."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from pifleet.errors import Failed


class CommandError(Failed):
    """A host command exited non-zero."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
        super().__init__(f"`{' '.join(argv)}` exited {returncode}: {detail}")


def run(argv: Sequence[str], *, check: bool = True, input: str | None = None,
        timeout: float | None = 120) -> subprocess.CompletedProcess[str]:
    """Run `argv` (no shell), capture its output as text; CommandError when it fails."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, input=input,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr)
    return proc


def succeeds(argv: Sequence[str]) -> bool:
    """True when `argv` exits 0 (its output is discarded)."""
    return run(argv, check=False).returncode == 0
