"""Waiting, with a timeout and progress callbacks, until nodes and workloads are ready.

Nodes are judged by their Ready condition, never by their pods (a CNI pod can be Running
while its node stays NotReady). A DaemonSet is ready when every scheduled pod is updated and
ready; a Deployment when `kubectl rollout status` would say so and it reports Available. The
server is polled (every `interval` seconds), so a wait also survives an API server that
restarts; each change of state is passed to `on_progress`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lightkube.core.exceptions import ApiError as LightkubeApiError

from pifleet.kube.client import Api, resource
from pifleet.kube.errors import KubeError, Unreachable


@dataclass(frozen=True)
class Progress:
    """Where a wait stands: `ready` of `total`, and why each waiting item is not ready."""

    what: str
    ready: int
    total: int
    waiting: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        """Whether everything waited for is ready."""
        return self.total > 0 and self.ready >= self.total and not self.waiting

    def summary(self) -> str:
        """`what: ready/total ready`, then what each waiting item is waiting for."""
        text = f"{self.what}: {self.ready}/{self.total} ready"
        if self.waiting:
            text += "; " + "; ".join(f"{k}: {v}" for k, v in sorted(self.waiting.items()))
        return text


class WaitTimeout(KubeError):
    """The wait ended before everything was ready; `progress` is the last state seen."""

    def __init__(self, message: str, progress: Progress) -> None:
        super().__init__(message)
        self.progress = progress


ProgressCallback = Callable[[Progress], None]


def wait_until(check: Callable[[], Progress], timeout: float,
               on_progress: ProgressCallback | None = None, interval: float = 1.0) -> Progress:
    """Call `check` until it reports done or `timeout` seconds pass (then WaitTimeout).

    An API server that cannot be reached is waited for too (it restarts during kubeadm's work);
    refused credentials end the wait at once.
    """
    deadline = time.monotonic() + timeout
    last: Progress | None = None
    while True:
        try:
            state = check()
        except Unreachable as exc:
            what = last.what if last else "API"
            state = Progress(what, last.ready if last else 0, last.total if last else 0,
                             {"API server": str(exc)})
        if state != last and on_progress is not None:
            on_progress(state)
        last = state
        if state.done:
            return state
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(f"not ready after {timeout:g} s: {state.summary()}", state)
        time.sleep(min(interval, left))


NODE = resource("v1", "Node")
DAEMONSET = resource("apps/v1", "DaemonSet")
DEPLOYMENT = resource("apps/v1", "Deployment")


def condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    """An object's status condition of type `kind`, or None."""
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


def node_progress(api: Api, names: Iterable[str]) -> Progress:
    """The fleet's nodes: registered and Ready, or why not (the Ready condition's message)."""
    wanted = list(dict.fromkeys(names))
    with api.talking():
        nodes = {n["metadata"]["name"]: n for n in api.lightkube.list(NODE)}
    waiting: dict[str, str] = {}
    for name in wanted:
        node = nodes.get(name)
        if node is None:
            waiting[name] = "not registered (its kubelet has not joined the cluster)"
            continue
        ready = condition(node, "Ready")
        if ready is None:
            waiting[name] = "no Ready condition reported yet"
        elif ready.get("status") != "True":
            why = ": ".join(str(ready[k]) for k in ("reason", "message") if ready.get(k))
            waiting[name] = f"Ready={ready.get('status')}" + (f" ({why})" if why else "")
    return Progress("nodes", len(wanted) - len(waiting), len(wanted), waiting)


def _get(api: Api, res: Any, namespace: str, name: str) -> dict[str, Any] | None:
    with api.talking():
        try:
            return dict(api.lightkube.get(res, name, namespace=namespace))
        except LightkubeApiError as err:
            if err.status.code == 404:
                return None
            raise


def _stale(obj: Mapping[str, Any]) -> bool:
    """Whether the controller has not yet seen the object's latest spec."""
    seen = (obj.get("status") or {}).get("observedGeneration") or 0
    return "status" not in obj or seen < (obj["metadata"].get("generation") or 0)


def daemonset_progress(api: Api, namespace: str, name: str) -> Progress:
    """A DaemonSet's pods: scheduled, updated to the current template and ready."""
    what = f"daemonset {namespace}/{name}"
    ds = _get(api, DAEMONSET, namespace, name)
    if ds is None:
        return Progress(what, 0, 0, {name: "not found"})
    st = ds.get("status") or {}
    desired = int(st.get("desiredNumberScheduled") or 0)
    ready = int(st.get("numberReady") or 0)
    updated = int(st.get("updatedNumberScheduled") or 0)
    waiting = {}
    if _stale(ds):
        waiting[name] = "the controller has not seen the latest change yet"
    elif desired == 0:
        waiting[name] = "no node to run on yet"
    elif updated < desired or ready < desired:
        waiting[name] = f"{ready}/{desired} pods ready, {updated}/{desired} updated"
    return Progress(what, min(ready, updated), desired, waiting)


def deployment_progress(api: Api, namespace: str, name: str) -> Progress:
    """A Deployment: rolled out (updated, no old pods, available) and Available."""
    what = f"deployment {namespace}/{name}"
    dep = _get(api, DEPLOYMENT, namespace, name)
    if dep is None:
        return Progress(what, 0, 0, {name: "not found"})
    spec_replicas = (dep.get("spec") or {}).get("replicas")
    want = 1 if spec_replicas is None else int(spec_replicas)
    st = dep.get("status") or {}
    updated = int(st.get("updatedReplicas") or 0)
    available = int(st.get("availableReplicas") or 0)
    current = int(st.get("replicas") or 0)
    available_condition = condition(dep, "Available") or {}
    waiting = {}
    if _stale(dep):
        waiting[name] = "the controller has not seen the latest change yet"
    elif updated < want:
        waiting[name] = f"{updated}/{want} replicas updated"
    elif current > updated:
        waiting[name] = f"{current - updated} old replicas still running"
    elif available < updated:
        waiting[name] = f"{available}/{updated} updated replicas available"
    elif available_condition.get("status") != "True":
        reason = available_condition.get("message") or available_condition.get("reason")
        waiting[name] = f"not Available{f' ({reason})' if reason else ''}"
    return Progress(what, min(available, want), want, waiting)


def wait_nodes_ready(api: Api, names: Iterable[str], timeout: float = 300.0,
                     on_progress: ProgressCallback | None = None,
                     interval: float = 1.0) -> Progress:
    """Wait until every named node is registered and Ready."""
    names = list(names)
    return wait_until(lambda: node_progress(api, names), timeout, on_progress, interval)


def wait_daemonset(api: Api, namespace: str, name: str, timeout: float = 300.0,
                   on_progress: ProgressCallback | None = None,
                   interval: float = 1.0) -> Progress:
    """Wait until a DaemonSet's pods are updated and ready on every node it wants."""
    return wait_until(lambda: daemonset_progress(api, namespace, name), timeout, on_progress,
                      interval)


def wait_deployment(api: Api, namespace: str, name: str, timeout: float = 300.0,
                    on_progress: ProgressCallback | None = None,
                    interval: float = 1.0) -> Progress:
    """Wait until a Deployment is rolled out and Available."""
    return wait_until(lambda: deployment_progress(api, namespace, name), timeout, on_progress,
                      interval)
