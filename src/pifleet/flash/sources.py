"""IMAGE as the user gives it (path, URL or catalog name) turned into a checked local file."""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from pathlib import Path

from pifleet.errors import BadInput
from pifleet.flash import catalog, download
from pifleet.flash.compress import ImageInfo, inspect

HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass
class Source:
    """A local image file, what it contains, and where it came from."""

    path: Path
    info: ImageInfo
    origin: str
    checked_sha256: str | None = None


def check_hex(value: str | None, option: str) -> str | None:
    """A SHA-256 given on the command line, lower-cased; BadInput if malformed."""
    if value is None:
        return None
    value = value.strip().removeprefix("sha256:")
    if not HEX64.match(value):
        raise BadInput(f"{option}: not a SHA-256 (64 hex digits): {value!r}")
    return value.lower()


def resolve(image: str, sha256: str | None = None, *, cache: Path | None = None,
            progress: download.Progress | None = None) -> Source:
    """Find or download the image and check the given file's SHA-256 before anything else.

    `sha256` is of the file as given (compressed or not). Catalog images use the publisher's
    checksum unless one is given.
    """
    sha256 = check_hex(sha256, "--sha256")
    if download.is_url(image) or (not Path(image).exists() and catalog.find(image)):
        url = image
        if not download.is_url(image):
            entry = catalog.get(image)
            url = entry.url
            if sha256 is None:
                sha256 = entry.sha256
            if sha256 is None and entry.sha256_url:
                name = Path(entry.url).name
                sha256 = download.checksum_from(download.fetch_text(entry.sha256_url), name)
        path = download.download(url, sha256, root=cache, progress=progress)
        return Source(path, inspect(path), url, sha256)
    path = Path(image).expanduser()
    if not path.exists():
        catalog.get(image)  # raises, listing the catalog
    _require_regular_file(path)
    info = inspect(path)
    if sha256:
        actual = download.file_sha256(path, progress)
        if actual != sha256:
            raise BadInput(f"{path}: SHA-256 is {actual}, expected {sha256}; nothing was "
                           f"written")
    return Source(path, info, str(path), sha256)


def _require_regular_file(path: Path) -> None:
    """BadInput saying what `path` is when it is not an image file (a folder, a disk...)."""
    mode = path.stat().st_mode
    if stat.S_ISREG(mode):
        return
    what = ("a directory" if stat.S_ISDIR(mode) else "a block device (a disk, not an image "
            "file)" if stat.S_ISBLK(mode) else "a character device" if stat.S_ISCHR(mode)
            else "a pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    raise BadInput(f"{path}: is {what}; give an image file (.img, .img.xz, .zip, ...), an "
                   "http(s) URL or a catalog name")
