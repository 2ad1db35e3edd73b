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
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from pifleet.errors import BadInput

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
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.read(limit).decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        raise BadInput(f"{url}: cannot download: {exc}") from exc


def checksum_from(text: str, file_name: str) -> str:
    """The SHA-256 for `file_name` in a `sha256sum`-style listing (or a lone hex figure)."""
    lone = None
    for line in text.splitlines():
        match = re.match(r"^\s*([0-9a-fA-F]{64})(?:\s+\*?(\S+))?", line)
        if not match:
            continue
        if match.group(2) and Path(match.group(2)).name == file_name:
            return match.group(1).lower()
        if not match.group(2) or lone is None:
            lone = match.group(1).lower()
    if lone is None:
        raise BadInput(f"no SHA-256 for {file_name} in the checksum file")
    return lone


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
    digest = hashlib.sha256()
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # already complete
            return _hash_file(part, digest)
        raise BadInput(f"{url}: download failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise BadInput(f"{url}: download failed: {exc}") from exc
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
                while block := response.read(BLOCK):
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
        except OSError as exc:
            raise BadInput(f"{url}: download interrupted ({exc}); run again to resume") from exc
        if total is not None and done != total:
            raise BadInput(f"{url}: download ended at {done} of {total} bytes; run again to "
                           f"resume")
    return digest.hexdigest()


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
