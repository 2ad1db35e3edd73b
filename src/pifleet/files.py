"""Writing local files safely: atomically, with the mode set before any byte is written."""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_LOCAL_LOCK = threading.Lock()


def atomic_write(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one.

    The temporary file is created with `mode` (0600 by default: keys, kubeconfig, secrets are
    never readable by others, not even for an instant) in the same directory, then renamed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for a read-modify-write of `path`.

    Serialises this process's threads or greenlets and other pifleet processes alike, through
    `fcntl.flock` on a `.lock` file beside `path`.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _LOCAL_LOCK, open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
