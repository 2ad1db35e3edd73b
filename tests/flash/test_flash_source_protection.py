"""A target that holds the source is bad input: exit 2, nothing written, the reason named.

The source is held by a target when writing the target would change it: the target is a loop
device whose backing file is the image (also through a symlink), the image lives on a
filesystem of the target (directly, on a "partition" of it, through another loop device), the
download cache or the bmap is there, or a regular-file target is the backing file of the loop
device the image's filesystem is mounted from. Each case once made pifleet zero the image's
first MiB before failing.
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flashhelp import digest, run

Image = Callable[[str], Path]
Loop = Callable[..., str]


def _copy(image: Image, where: Path, name: str = "raspios.img") -> Path:
    """A private copy of the session's image (a failure must not spoil the shared one)."""
    where.mkdir(parents=True, exist_ok=True)
    copy = where / name
    shutil.copyfile(image("raspios_bookworm"), copy)
    return copy


def _refused(proc: subprocess.CompletedProcess[str], *names: str | Path) -> None:
    assert proc.returncode == 2, proc.stderr + proc.stdout
    for name in names:
        assert str(name) in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("how", ["direct", "loop over a symlink", "image as a symlink",
                                 "target as a symlink"])
def test_loop_device_backed_by_the_image(image: Image, loop: Loop, tmp_path: Path,
                                         how: str) -> None:
    copy = _copy(image, tmp_path / "images")
    link = tmp_path / "link.img"
    link.symlink_to(copy)
    device = loop.attach(link if how == "loop over a symlink" else copy)  # type: ignore[attr-defined]
    target: str | Path = device
    if how == "target as a symlink":
        target = tmp_path / "card"
        target.symlink_to(device)
    source = link if how == "image as a symlink" else copy
    before = digest(copy)
    proc = run("flash", source, target, "--hostname", "brig", "--allow-non-removable", "--yes")
    _refused(proc, target, "backing file")
    assert "nothing was written" in proc.stderr
    assert digest(copy) == before


def test_image_on_a_filesystem_of_the_target(image: Image, loop: Loop, tmp_path: Path) -> None:
    device = loop(80)
    subprocess.run(["mkfs.ext4", "-q", "-F", device], check=True, capture_output=True)
    mount = loop.mount(device, tmp_path / "mnt")  # type: ignore[attr-defined]
    copy = _copy(image, mount)
    before = digest(copy)
    for extra in ([], ["--unmount"]):
        proc = run("flash", copy, device, "--format", "none", "--allow-non-removable", "--yes",
                   *extra)
        _refused(proc, device, copy, mount)
    assert str(mount) in Path("/proc/self/mounts").read_text()  # --unmount did not act
    assert digest(copy) == before


def test_image_on_a_partition_of_the_target(image: Image, loop: Loop, tmp_path: Path) -> None:
    """This kernel makes no partition devices for loop devices: a device-mapper linear map
    over the second half stands for a partition (the image's filesystem rests on it)."""
    if shutil.which("dmsetup") is None:
        pytest.skip("dmsetup is not installed")
    device = loop(100)
    name = f"pifleet-test-{Path(device).name}"
    table = f"0 {50 * 2048} linear {device} {50 * 2048}"
    made = subprocess.run(["dmsetup", "create", name, "--table", table], capture_output=True,
                          text=True, check=False)
    if made.returncode != 0:
        pytest.skip("device-mapper is not available in this kernel")
    mount = tmp_path / "mnt"
    try:
        part = f"/dev/mapper/{name}"
        subprocess.run(["mkfs.ext4", "-q", "-F", part], check=True, capture_output=True)
        mount.mkdir()
        subprocess.run(["mount", part, str(mount)], check=True, capture_output=True)
        copy = _copy(image, mount)
        before = digest(copy)
        proc = run("flash", copy, device, "--format", "none", "--allow-non-removable",
                   "--yes", "--unmount")
        _refused(proc, device, copy)
        assert digest(copy) == before
    finally:
        # The mount first, then the map beneath it (the loop fixture detaches the device).
        subprocess.run(["umount", str(mount)], capture_output=True, check=False)
        subprocess.run(["dmsetup", "remove", name], capture_output=True, check=False)


def test_image_on_a_loop_device_over_the_target(image: Image, loop: Loop, tmp_path: Path
                                                ) -> None:
    """`mount -o loop,offset=` style: a second loop device over the target, 1 MiB in."""
    device = loop(80)
    inner = loop.attach(device, offset=1024 * 1024)  # type: ignore[attr-defined]
    subprocess.run(["mkfs.ext4", "-q", "-F", inner], check=True, capture_output=True)
    mount = loop.mount(inner, tmp_path / "mnt")  # type: ignore[attr-defined]
    copy = _copy(image, mount)
    before = digest(copy)
    proc = run("flash", copy, device, "--format", "none", "--allow-non-removable", "--yes")
    _refused(proc, device, copy)
    assert digest(copy) == before


def test_file_target_that_backs_the_images_filesystem(image: Image, loop: Loop, tmp_path: Path
                                                      ) -> None:
    backing = tmp_path / "disk.img"
    with backing.open("wb") as handle:
        handle.truncate(80 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(backing)], check=True, capture_output=True)
    device = loop.attach(backing)  # type: ignore[attr-defined]
    mount = loop.mount(device, tmp_path / "mnt")  # type: ignore[attr-defined]
    copy = _copy(image, mount)
    before = digest(copy)
    proc = run("flash", copy, backing, "--format", "none")
    _refused(proc, backing, copy)
    assert digest(copy) == before


def test_bmap_on_a_filesystem_of_the_target(image: Image, loop: Loop, tmp_path: Path) -> None:
    device = loop(40)
    subprocess.run(["mkfs.ext4", "-q", "-F", device], check=True, capture_output=True)
    mount = loop.mount(device, tmp_path / "mnt")  # type: ignore[attr-defined]
    bmap = mount / "raspios.bmap"
    subprocess.run(["bmaptool", "create", "-o", str(bmap), str(image("raspios_bookworm"))],
                   check=True, capture_output=True)
    proc = run("flash", image("raspios_bookworm"), device, "--bmap", bmap, "--format", "none",
               "--allow-non-removable", "--yes", "--unmount")
    _refused(proc, device, bmap)


@contextlib.contextmanager
def _server(body: bytes) -> Iterator[tuple[str, list[str]]]:
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", asked
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_cache_on_a_filesystem_of_the_target(image: Image, loop: Loop, tmp_path: Path
                                                      ) -> None:
    device = loop(40)
    subprocess.run(["mkfs.ext4", "-q", "-F", device], check=True, capture_output=True)
    mount = loop.mount(device, tmp_path / "mnt")  # type: ignore[attr-defined]
    with _server(image("raspios_bookworm").read_bytes()) as (url, asked):
        proc = run("flash", f"{url}/raspios.img", device, "--format", "none",
                   "--allow-non-removable", "--yes", "--unmount", cache=mount / "cache")
    _refused(proc, device, "download cache")
    assert asked == []  # refused before downloading anything


def test_an_unrelated_loop_device_is_still_written(image: Image, loop: Loop, tmp_path: Path
                                                   ) -> None:
    """The check refuses what holds the source, not loop devices as such."""
    copy = _copy(image, tmp_path / "images")
    device = loop(80)
    proc = run("flash", copy, device, "--format", "none", "--allow-non-removable", "--yes")
    assert proc.returncode == 0, proc.stderr
