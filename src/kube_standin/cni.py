"""What a network plugin's installer container would write into /etc/cni/net.d.

Network plugins ship their CNI config in a ConfigMap and install it with a container that mounts
both that ConfigMap and the host's /etc/cni/net.d: flannel with `cp -f SRC DST` up to v0.28.5,
with `/opt/bin/install-conf SRC DST` (an atomic copy) from v0.28.6 (facts.md section 9), other
plugins with scripts of their own. The stand-in runs no container, so it works the copy out from
the pod spec instead of from a known command: the files the container sees from ConfigMap
volumes, the host directories it mounts, and the paths on its command line.
"""

from __future__ import annotations

import base64
import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CNI_DIR = "/etc/cni/net.d"
CONFIG_SUFFIXES = (".conf", ".conflist", ".json")

Obj = dict[str, Any]
# (namespace, name) -> the ConfigMap, or None when it does not exist
FetchConfigMap = Callable[[str, str], Obj | None]


@dataclass(frozen=True)
class Install:
    """One file an installer container writes on the host."""

    container: str
    host_path: str
    data: bytes
    mode: int


def is_config(data: bytes) -> bool:
    """Whether `data` is a CNI network config (`.conf`) or list (`.conflist`) a runtime loads."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(doc, dict):
        return False
    plugins = doc.get("plugins")
    if isinstance(plugins, list):
        return bool(plugins) and all(isinstance(p, dict) and p.get("type") for p in plugins)
    return isinstance(doc.get("type"), str) and bool(doc["type"])


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _configmap_files(volume: Obj, namespace: str, fetch: FetchConfigMap
                     ) -> dict[str, tuple[bytes, int]]:
    """Files (relative path -> content, mode) of a configMap or projected volume."""
    if "configMap" in volume:
        sources, default_mode = [volume["configMap"]], volume["configMap"].get("defaultMode")
    elif "projected" in volume:
        projected = volume["projected"]
        sources = [s["configMap"] for s in projected.get("sources") or [] if "configMap" in s]
        default_mode = projected.get("defaultMode")
    else:
        return {}
    mode = int(default_mode) if default_mode is not None else 0o644
    files: dict[str, tuple[bytes, int]] = {}
    for source in sources:
        cm = fetch(namespace, source.get("name", ""))
        if cm is None:
            continue
        values = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
        values.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
        items = source.get("items") or [{"key": k, "path": k} for k in sorted(values)]
        for item in items:
            if item.get("key") in values:
                files[item.get("path", item["key"])] = (values[item["key"]],
                                                        int(item.get("mode", mode)))
    return files


def _view(container: Obj, volumes: dict[str, Obj], namespace: str, fetch: FetchConfigMap
          ) -> tuple[dict[str, tuple[bytes, int]], list[tuple[str, str]]]:
    """What one container sees: its ConfigMap files by absolute path, and its hostPath mounts as
    (container directory, host directory) pairs, deepest first."""
    files: dict[str, tuple[bytes, int]] = {}
    host_mounts: list[tuple[str, str]] = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount.get("name", ""), {})
        target = posixpath.normpath(mount.get("mountPath", "/"))
        sub = mount.get("subPath", "")
        if "hostPath" in volume:
            host = posixpath.normpath(posixpath.join(volume["hostPath"].get("path", "/"), sub))
            host_mounts.append((target, host))
            continue
        for rel, content in _configmap_files(volume, namespace, fetch).items():
            if not sub:
                files[posixpath.join(target, rel)] = content
            elif rel == sub:
                files[target] = content
            elif rel.startswith(sub.rstrip("/") + "/"):
                files[posixpath.join(target, rel[len(sub.rstrip("/")) + 1:])] = content
    host_mounts.sort(key=lambda m: len(m[0]), reverse=True)
    return files, host_mounts


def _on_host(path: str, host_mounts: list[tuple[str, str]]) -> str | None:
    """The host path behind a container path, when a hostPath volume is mounted there."""
    path = posixpath.normpath(path)
    for inside, host in host_mounts:
        if _within(path, inside):
            return posixpath.normpath(host + path[len(inside):])
    return None


def _words(container: Obj) -> list[str]:
    """Command and arguments, split further at shell punctuation and `=`, so that
    `--dest=PATH` and `sh -c "cp SRC DST"` offer their paths too."""
    words: list[str] = []
    for arg in [*(container.get("command") or []), *(container.get("args") or [])]:
        words += [w for w in re.split(r"[\s;&|<>()'\"`=]+", str(arg)) if w]
    return words


def _default_name(data: bytes) -> str:
    doc = json.loads(data)
    suffix = ".conflist" if "plugins" in doc else ".conf"
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in str(doc.get("name", "")))
    return f"10-{name or 'network'}{suffix}"


def _container_installs(container: Obj, volumes: dict[str, Obj], namespace: str,
                        fetch: FetchConfigMap) -> list[Install]:
    files, host_mounts = _view(container, volumes, namespace, fetch)
    configs = {path: f for path, f in files.items() if is_config(f[0])}
    reaches_cni = any(_within(host, CNI_DIR) or _within(CNI_DIR, host)
                      for _, host in host_mounts)
    if not configs or not reaches_cni:
        return []
    words = _words(container)
    sources = [w for w in words if posixpath.normpath(w) in configs]
    on_host = [(w, h) for w in words if w.startswith("/") and posixpath.normpath(w) not in files
               and (h := _on_host(w, host_mounts)) is not None]
    targets = [(w, h) for w, h in on_host if _within(h, CNI_DIR)]
    if on_host and not targets:
        return []  # it writes somewhere else on the host: not a network config install
    # `cp SRC DST` and `install-conf SRC DST` name both; with only the destination named (a
    # script filling in a template), the one config it can see is what it installs.
    if sources:
        source = configs[posixpath.normpath(sources[0])]
        name = posixpath.basename(posixpath.normpath(sources[0]))
    elif len({c[0] for c in configs.values()}) == 1:
        source = next(iter(configs.values()))
        name = _default_name(source[0])
    else:
        return []
    if targets:
        word, host = targets[-1]
        is_dir = word.endswith("/") or host == CNI_DIR or any(
            posixpath.normpath(word) == inside for inside, _ in host_mounts)
        dest = posixpath.join(host, name) if is_dir else host
    else:
        dest = posixpath.join(CNI_DIR, name)
    return [Install(container.get("name", ""), dest, source[0], source[1])]


def installs(pod: Obj, fetch: FetchConfigMap) -> list[Install]:
    """The CNI config files the pod's containers would install, init containers first."""
    spec = pod.get("spec") or {}
    volumes = {v.get("name", ""): v for v in spec.get("volumes") or []}
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    found = []
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        found += _container_installs(container, volumes, namespace, fetch)
    return found


def network_ready(directory: Any) -> bool:
    """Whether `directory` (a Path) holds a CNI config the runtime can load: what containerd's
    NetworkReady condition, and so the node's Ready condition, depends on."""
    if not directory.is_dir():
        return False
    for entry in sorted(directory.iterdir()):
        if entry.suffix in CONFIG_SUFFIXES and entry.is_file():
            try:
                if is_config(entry.read_bytes()):
                    return True
            except OSError:
                continue
    return False
