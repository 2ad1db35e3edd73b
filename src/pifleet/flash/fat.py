"""The FAT boot partition of a card or image file, edited in place through mtools.

mtools addresses a filesystem inside a larger file with `-i FILE@@OFFSET`, so a card or an
image is changed without mounting it and without root (design.md: pyfatfs was rejected).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pifleet.errors import Failed


@dataclass(frozen=True)
class FatVolume:
    """A FAT filesystem at byte `offset` of `path` (a regular file or a block device)."""

    path: Path
    offset: int

    @property
    def spec(self) -> str:
        """The `-i` argument of mtools."""
        return f"{self.path}@@{self.offset}"

    def _run(self, *args: str, data: bytes | None = None) -> bytes:
        env = dict(os.environ, MTOOLS_SKIP_CHECK="1", MTOOLS_NO_VFAT="0")
        proc = subprocess.run([args[0], "-i", self.spec, *args[1:]], input=data,
                              capture_output=True, env=env, check=False)
        if proc.returncode != 0:
            message = proc.stderr.decode(errors="replace").strip().splitlines()
            raise Failed(f"{self.path}: {args[0]} failed: {message[-1] if message else '?'}")
        return proc.stdout

    def list(self) -> set[str]:
        """Names of the files and directories in the root directory (as written, any case)."""
        out = self._run("mdir", "-b", "::/")
        names = set()
        for line in out.decode(errors="replace").splitlines():
            line = line.strip()
            if line.startswith("::/"):
                names.add(line[3:].rstrip("/"))
        return names

    def exists(self, name: str) -> bool:
        """Whether `name` exists in the root directory (FAT names ignore case)."""
        return name.lower() in {n.lower() for n in self.list()}

    def read(self, name: str) -> bytes:
        """The bytes of the file `name` in the root directory."""
        return self._run("mtype", "-b", f"::/{name}")

    def write(self, name: str, data: bytes) -> None:
        """Create or replace the file `name` in the root directory."""
        with tempfile.NamedTemporaryFile(prefix="pifleet-fat-") as tmp:
            # The temporary copy may hold a password hash or Wi-Fi key: keep it private.
            os.fchmod(tmp.fileno(), 0o600)
            tmp.write(data)
            tmp.flush()
            self._run("mcopy", "-o", "-n", tmp.name, f"::/{name}")

    def delete(self, name: str) -> None:
        """Remove `name` from the root directory if it is there."""
        if self.exists(name):
            self._run("mdel", f"::/{name}")
