"""The kubelet stand-in's record of the containers it "runs", served as their logs.

No container runs, so there is no output to show; instead the kubelet writes what it did with
each container (image, command, start, restarts) where a real kubelet keeps container logs,
`/var/log/pods/NAMESPACE_POD_UID/CONTAINER/RESTARTS.log`, in the CRI log format
(`TIMESTAMP stdout F LINE`). `kubectl logs` reads it through the API server and the kubelet's
`/containerLogs` endpoint as it would read a real container's output.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from .paths import BANNER, p

LOG_ROOT = "/var/log/pods"
Obj = dict[str, Any]


class LogError(Exception):
    """A request the kubelet refuses: HTTP status and the message the real one gives."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def pod_dir(pod: Obj) -> Path:
    """The folder of one pod's container logs."""
    meta = pod["metadata"]
    return p(LOG_ROOT) / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"


def _stamp(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _words(values: Any) -> str:
    return json.dumps([str(v) for v in values or []])


def append(pod: Obj, container: str, lines: list[str], restarts: int = 0) -> None:
    """Add lines to a container's log, one CRI log record each."""
    path = pod_dir(pod) / container / f"{restarts}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = _stamp()
    with path.open("a", encoding="utf-8") as fh:
        for line in lines:
            fh.write(f"{stamp} stdout F {line}\n")


def record_start(pod: Obj, node: str, notes: dict[str, list[str]] | None = None) -> None:
    """Record the start of every container of a pod that has no record yet; `notes` adds
    lines per container (what an installer container wrote, say)."""
    spec = pod["spec"]
    meta = pod["metadata"]
    notes = notes or {}
    mirror = "kubernetes.io/config.mirror" in (meta.get("annotations") or {})
    for kind, containers in (("init container", spec.get("initContainers") or []),
                             ("container", spec.get("containers") or [])):
        for c in containers:
            if (pod_dir(pod) / c["name"] / "0.log").exists():
                continue
            lines = [f"[{BANNER}] kubelet on node {node}: {kind} {c['name']!r} of pod "
                     f"{meta['namespace']}/{meta['name']}",
                     f"image: {c.get('image', '')} (not pulled: the stand-in runs no "
                     "containers, so there is no output of its own)",
                     f"command: {_words(c.get('command'))}",
                     f"args: {_words(c.get('args'))}",
                     f"started: {_stamp()[:19]}Z, restarts: 0"]
            if kind == "init container":
                lines.append("exited: 0 (Completed), as the stand-in takes it to have run")
            if mirror:
                lines.append("static pod: the stand-in runs it as a service on the node "
                             "(see journalctl -u kube-apiserver-standin)")
            append(pod, c["name"], lines + notes.get(c["name"], []))


def forget_except(uids: set[str]) -> None:
    """Remove the logs of pods no longer on this node."""
    root = p(LOG_ROOT)
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.rsplit("_", 1)[-1] not in uids:
            shutil.rmtree(entry, ignore_errors=True)


def _container_state(pod: Obj, name: str) -> Obj:
    status = pod.get("status") or {}
    for c in [*(status.get("containerStatuses") or []),
              *(status.get("initContainerStatuses") or [])]:
        if c.get("name") == name:
            return dict(c)
    return {}


def locate(pod: Obj, container: str, query: str) -> tuple[Path, dict[str, str]]:
    """The log file `/containerLogs` reads for a container, and the query's options; LogError
    with the real kubelet's words when there is none."""
    options = {k: v[-1] for k, v in parse_qs(query).items()}
    spec = pod["spec"]
    names = [c["name"] for c in spec.get("containers") or []]
    inits = [c["name"] for c in spec.get("initContainers") or []]
    name = pod["metadata"]["name"]
    if container not in names + inits:
        raise LogError(400, f"container {container} is not valid for pod {name}")
    state = _container_state(pod, container)
    waiting = (state.get("state") or {}).get("waiting")
    if waiting is not None or not state:
        reason = (waiting or {}).get("reason", "ContainerCreating")
        raise LogError(400, f'container "{container}" in pod "{name}" is waiting to start: '
                            f"{reason}")
    restarts = int(state.get("restartCount", 0))
    if options.get("previous") in ("true", "1"):
        if restarts == 0:
            raise LogError(400, f'previous terminated container "{container}" in pod '
                                f'"{name}" not found')
        restarts -= 1
    return pod_dir(pod) / container / f"{restarts}.log", options


def records(path: Path) -> list[str]:
    """The CRI log records in a file (none if it is gone)."""
    try:
        return [r for r in path.read_text(encoding="utf-8").splitlines() if r.count(" ") >= 3]
    except OSError:
        return []


def render(lines: list[str], options: dict[str, str]) -> bytes:
    """Log records as `kubectl logs` shows them: the text, with `timestamps` its time too."""
    stamps = options.get("timestamps") in ("true", "1")
    return "".join((r.split(" ", 1)[0] + " " if stamps else "") + r.split(" ", 3)[3] + "\n"
                   for r in lines).encode()


def read(pod: Obj, container: str, query: str) -> bytes:
    """The log of one container as `/containerLogs` answers it, honouring the options kubectl
    sends: timestamps, tailLines, limitBytes, sinceSeconds, previous."""
    path, options = locate(pod, container, query)
    lines = records(path)
    if "sinceSeconds" in options:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=int(options["sinceSeconds"]))
        lines = [r for r in lines if r[:19] >= since.strftime("%Y-%m-%dT%H:%M:%S")]
    if "tailLines" in options:
        tail = int(options["tailLines"])
        lines = lines[-tail:] if tail > 0 else []
    data = render(lines, options)
    if "limitBytes" in options:
        data = data[:int(options["limitBytes"])]
    return data
