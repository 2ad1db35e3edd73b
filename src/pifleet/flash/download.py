"""Downloads into the user cache: keyed by URL and checksum, resumable, atomic, lock-protected.

facts.md section 6: hypriot/flash caches by file name in /tmp, so parallel runs collide. Here
each (URL, checksum) pair has its own directory, a lock serialises runs that want the same file,
a partial download is kept as `.part` and resumed with an HTTP Range request, and only a
complete, checked file is renamed into place.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from pifleet.errors import BadInput, describe

BLOCK = 1024 * 1024
TIMEOUT = 60

Progress = Callable[[int, int | None], None]


def cache_root() -> Path:
    """pifleet's image cache (XDG_CACHE_HOME honoured)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pifleet" / "images"


def is_url(text: str) -> bool:
    """Whether `text` is an http(s) URL."""
    return text.startswith(("http://", "https://"))


def cache_path(url: str, sha256: str | None, root: Path | None = None) -> Path:
    """Where the file for (url, checksum) lives once complete."""
    key = hashlib.sha256(f"{url}\n{(sha256 or '').lower()}".encode()).hexdigest()[:24]
    name = Path(urllib.parse.urlparse(url).path).name or "image"
    return (root or cache_root()) / key / name


def fetch_text(url: str, limit: int = 1 << 20) -> str:
    """A small text resource (a checksum file)."""
    import http.client
    import urllib.error
    import urllib.request  # here, not at the top: flashing a local file never needs it

    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.read(limit).decode(errors="replace")
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise BadInput(f"{url}: cannot download: {_reason(exc, url)}") from exc


def checksum_from(text: str, file_name: str) -> str:
    """The SHA-256 for `file_name` in a checksum listing.

    Lines are `sha256sum` style (`HEX  NAME`, `HEX *NAME`) or BSD style (`SHA256 (NAME) =
    HEX`). A listing that names no file may hold one lone figure, taken as the file's; a figure
    that names another file is never taken for this one.
    """
    lone: list[str] = []
    named: list[str] = []
    for line in text.splitlines():
        bsd = re.match(r"^\s*SHA256\s*\((.+)\)\s*=\s*([0-9a-fA-F]{64})\s*$", line)
        gnu = re.match(r"^\s*\\?([0-9a-fA-F]{64})(?:\s+\*?(.+?))?\s*$", line)
        if bsd:
            name, figure = bsd.group(1), bsd.group(2)
        elif gnu:
            figure, name = gnu.group(1), gnu.group(2)
        else:
            continue
        if name is None:
            lone.append(figure.lower())
        elif Path(name.strip()).name == file_name:
            return figure.lower()
        else:
            named.append(Path(name.strip()).name)
    if len(lone) == 1 and not named:
        return lone[0]
    listed = f" (it lists {', '.join(named[:5])})" if named else ""
    raise BadInput(f"no SHA-256 for {file_name} in the checksum file{listed}")


def download(url: str, sha256: str | None, *, root: Path | None = None,
             progress: Progress | None = None) -> Path:
    """The cached file for `url`, downloading or resuming as needed; checked against `sha256`.

    A checksum mismatch deletes the partial file and raises BadInput: nothing reached a card.
    """
    final = cache_path(url, sha256, root)
    final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (final.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second run for the same file waits, then reuses it
        if final.exists():
            if sha256 and file_sha256(final) != sha256.lower():
                final.unlink()
            else:
                return final
        part = final.with_name(final.name + ".part")
        digest = _fetch(url, part, progress)
        if sha256 and digest != sha256.lower():
            part.unlink(missing_ok=True)
            raise BadInput(f"{url}: downloaded file has SHA-256 {digest}, expected {sha256}; "
                           f"nothing was written")
        os.replace(part, final)
        return final


def _fetch(url: str, part: Path, progress: Progress | None) -> str:
    import http.client
    import urllib.error
    import urllib.request

    digest = hashlib.sha256()
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # already complete
            return _hash_file(part, digest)
        raise BadInput(f"{url}: download failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise BadInput(f"{url}: download failed: {_reason(exc, url)}") from exc
    with response:
        resumed = have and response.status == 206
        mode = "ab" if resumed else "wb"
        if resumed:
            _hash_file(part, digest)
        else:
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        try:
            with part.open(mode) as out:
                done = have
                while True:
                    try:
                        block = response.read(BLOCK)
                    except http.client.IncompleteRead as exc:
                        out.write(exc.partial)  # whole chunks that came: resume after them
                        raise
                    if not block:
                        break
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
        except (OSError, http.client.HTTPException) as exc:
            # A cut chunked response raises IncompleteRead, an HTTPException and no OSError;
            # what arrived stays in the .part file for the next run to resume from.
            raise BadInput(f"{url}: download interrupted ({_reason(exc, url)}); run again to "
                           f"resume") from exc
        if total is not None and done != total:
            raise BadInput(f"{url}: download ended at {done} of {total} bytes; run again to "
                           f"resume")
    return digest.hexdigest()


def _reason(exc: BaseException, url: str) -> str:
    """One line in pifleet's words: urllib's own reads `<urlopen error [Errno -2] ...>`, and
    IncompleteRead's is a byte count without context. The error itself stays for `-v`."""
    import http.client
    import socket
    import ssl
    import urllib.error

    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed after {len(exc.partial)} bytes of a block"
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or url
    where = f"{host}:{parts.port}" if parts.port else host
    if isinstance(exc, socket.gaierror):
        return f"name resolution failed for {host}; check the URL or the network"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer from {where} within {TIMEOUT} s; check the URL or the network"
    if isinstance(exc, ConnectionRefusedError):
        return f"{where} refused the connection; check the URL (and its port)"
    if isinstance(exc, ConnectionResetError):
        return f"{where} closed the connection; run again to resume"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the TLS certificate of {host} is not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS with {where} failed ({exc.reason or exc})"
    if isinstance(exc, OSError):
        return f"cannot reach {where}: {describe(exc)}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return describe(exc)


def _hash_file(path: Path, digest: hashlib._Hash) -> str:
    with path.open("rb") as handle:
        while block := handle.read(BLOCK * 4):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path, progress: Progress | None = None) -> str:
    """SHA-256 of a whole file."""
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as handle:
        while block := handle.read(BLOCK * 4):
            digest.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return digest.hexdigest()
