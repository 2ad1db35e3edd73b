"""The kubelet stand-in: registers its Node, heartbeats, and "runs" the pods bound to it.

No containers are started. A pod becomes Running at once when it uses the host network, and
otherwise only once a CNI config exists in /etc/cni/net.d, as with a real kubelet whose pod
sandboxes need the network plugin. When a pod's containers would install a CNI config from a
ConfigMap into the host's /etc/cni/net.d (flannel's `install-cni`, in either of its forms), the
file is written on the host as the container would write it (see `cni.py`), which makes the
node Ready.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import threading
from typing import Any

import yaml

from . import cni, kubelet_server, podlogs, services
from .client import Client, ClientError
from .paths import BANNER, git_version, p, write_private

log = logging.getLogger("kubelet-standin")
MIRROR = "kubernetes.io/config.mirror"
CONFIG_HASH = "kubernetes.io/config.hash"
NOT_READY_MESSAGE = ("container runtime network not ready: NetworkReady=false "
                     "reason:NetworkPluginNotReady message:Network plugin returns error: "
                     "cni plugin not initialized")


def stamp() -> str:
    """Now, as metadata timestamps are written."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ready(status: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in status.get("conditions") or [])


def cni_ready() -> bool:
    """Whether a loadable CNI network config exists (what the runtime's NetworkReady needs)."""
    return cni.network_ready(p(cni.CNI_DIR))


def _flags() -> dict[str, str]:
    env = p("/var/lib/kubelet/kubeadm-flags.env")
    out: dict[str, str] = {}
    if env.exists():
        m = re.search(r'KUBELET_KUBEADM_ARGS="([^"]*)"', env.read_text())
        for arg in shlex.split(m.group(1)) if m else []:
            if arg.startswith("--") and "=" in arg:
                k, v = arg[2:].split("=", 1)
                out[k] = v
    return out


def _os_image() -> str:
    try:
        for line in p("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "Linux"


def _runtime_version() -> str:
    try:
        out = subprocess.run(["containerd", "--version"], capture_output=True, text=True,
                             timeout=5).stdout.split()
        return "containerd://" + out[2].split("~")[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "containerd://unknown"


def _read(path: str, default: str = "") -> str:
    try:
        return p(path).read_text().strip()
    except OSError:
        return default


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


class Kubelet:
    """One node's kubelet."""

    def __init__(self) -> None:
        config_path = p("/var/lib/kubelet/config.yaml")
        self.config = yaml.safe_load(config_path.read_text())
        self.client = Client.from_kubeconfig(p("/etc/kubernetes/kubelet.conf").read_text())
        flags = _flags()
        self.name = flags.get("hostname-override") or os.uname().nodename.lower()
        self.address = flags.get("node-ip", "127.0.0.1")
        period = str(self.config.get("nodeStatusUpdateFrequency", "10s"))
        self.period = float(period.rstrip("s")) if period.endswith("s") else 10.0
        self.stop = threading.Event()
        self.pod_ips: dict[str, str] = {}
        self.restarted: dict[str, str] = {}  # static pod manifest -> hash it was restarted for
        self.pods: list[dict[str, Any]] = []  # as last seen, for the kubelet's /pods

    # ---- node ----
    def node_status(self) -> dict[str, Any]:
        """The status the kubelet posts: addresses, nodeInfo, capacity and conditions."""
        ready = cni_ready()
        now = stamp()
        mem_kb = 0
        for line in _read("/proc/meminfo").splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
        st = os.statvfs("/")
        capacity = {"cpu": str(os.cpu_count() or 1), "memory": f"{mem_kb}Ki", "pods": "110",
                    "ephemeral-storage": f"{st.f_blocks * st.f_frsize // 1024}Ki"}
        base = {"lastHeartbeatTime": now, "lastTransitionTime": now}
        conds = [dict(base, type=t, status="False", reason=r, message=m) for t, r, m in (
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory "
                                                             "available"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))]
        conds.append(dict(base, type="Ready", status="True" if ready else "False",
                          reason="KubeletReady" if ready else "KubeletNotReady",
                          message="kubelet is posting ready status" if ready
                          else NOT_READY_MESSAGE))
        machine_id = _read("/etc/machine-id")
        return {
            "addresses": [{"type": "InternalIP", "address": self.address},
                          {"type": "Hostname", "address": self.name}],
            "capacity": capacity, "allocatable": dict(capacity),
            "conditions": conds,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": int(self.config.get("port",
                                                                                10250))}},
            "nodeInfo": {"architecture": _arch(), "bootID": _read(
                "/proc/sys/kernel/random/boot_id"), "containerRuntimeVersion":
                _runtime_version(), "kernelVersion": platform.release(),
                "kubeProxyVersion": "", "kubeletVersion": git_version(), "machineID": machine_id,
                "operatingSystem": "linux", "osImage": _os_image(),
                "systemUUID": _read("/sys/class/dmi/id/product_uuid", machine_id)},
        }

    def register(self) -> None:
        """Create the Node (or adopt the existing one) and post the first status."""
        labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": _arch(), "beta.kubernetes.io/os": "linux",
                  "beta.kubernetes.io/arch": _arch()}
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": labels,
                             "annotations": {"kube-standin": BANNER,
                                             "volumes.kubernetes.io/controller-managed-attach-"
                                             "detach": "true"}},
                "spec": {}}
        try:
            self.client.post("/api/v1/nodes", node)
            log.info("Successfully registered node %s", self.name)
        except ClientError as err:
            if err.code != 409:
                raise
            self.client.merge_patch(f"/api/v1/nodes/{self.name}", {"metadata": {
                "labels": labels}})
        self.heartbeat()

    def heartbeat(self) -> None:
        """Post the node status; keep transition times when a condition did not change."""
        status = self.node_status()
        try:
            live = self.client.get(f"/api/v1/nodes/{self.name}")
        except ClientError as err:
            if err.code == 404:  # deleted by an admin: register again, as the real one does
                self.register()
                return
            raise
        before = {c["type"]: c for c in (live.get("status") or {}).get("conditions") or []}
        for c in status["conditions"]:
            old = before.get(c["type"])
            if old and old.get("status") == c["status"]:
                c["lastTransitionTime"] = old.get("lastTransitionTime", c["lastTransitionTime"])
        self.client.merge_patch(f"/api/v1/nodes/{self.name}/status", {"status": status})

    # ---- pods ----
    def _pod_cidr(self) -> str:
        node = self.client.get(f"/api/v1/nodes/{self.name}")
        return str((node.get("spec") or {}).get("podCIDR", ""))

    def _ip_for(self, pod: dict[str, Any], used: set[str]) -> str:
        uid = pod["metadata"]["uid"]
        if uid in self.pod_ips:
            return self.pod_ips[uid]
        cidr = self._pod_cidr()
        if not cidr:
            return ""
        for host in list(ipaddress.ip_network(cidr).hosts())[1:]:
            if str(host) not in used:
                self.pod_ips[uid] = str(host)
                return str(host)
        return ""

    def install_network_config(self, pod: dict[str, Any]) -> dict[str, list[str]]:
        """Write the CNI config files the pod's installer containers would write; returns
        what each container did, for its log."""
        ns = pod["metadata"]["namespace"]

        def fetch(namespace: str, name: str) -> dict[str, Any] | None:
            try:
                return dict(self.client.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}"))
            except ClientError as err:
                if err.code == 404:
                    return None
                raise

        notes: dict[str, list[str]] = {}
        for found in cni.installs(pod, fetch):
            log.info("container %s of %s/%s: installing %s", found.container, ns,
                     pod["metadata"]["name"], found.host_path)
            write_private(p(found.host_path), found.data, found.mode)
            notes.setdefault(found.container, []).append(
                f"wrote {found.host_path} (mode {found.mode:04o}) from its ConfigMap, as this "
                "container would have")
        return notes

    def sync_pods(self) -> None:
        """Bring every pod bound to this node to Running (or keep it waiting for the CNI)."""
        pods = self.client.get(f"/api/v1/pods?fieldSelector=spec.nodeName%3D{self.name}")["items"]
        self.pods = pods
        podlogs.forget_except({pod["metadata"]["uid"] for pod in pods})
        self.mirror_static_pods(pods)
        used = {str(pp.get("status", {}).get("podIP")) for pp in pods}
        network = cni_ready()
        for pod in pods:
            st = pod.get("status") or {}
            host_net = bool(pod["spec"].get("hostNetwork"))
            running = st.get("phase") == "Running"
            has_ip = host_net or st.get("podIP") not in (None, "", self.address)
            if running and has_ip and _ready(st):
                continue
            if st.get("phase") in ("Succeeded", "Failed"):
                continue  # a finished pod is never started again
            notes: dict[str, list[str]] = {}
            if running and has_ip:
                # Marked not Ready while this node was away: its containers kept running.
                status = self.running(pod, str(st.get("podIP")), st)
                for c in status["containerStatuses"]:
                    podlogs.append(pod, c["name"], [
                        f"[{BANNER}] kubelet on node {self.name} is back: container still "
                        f"counted as running, restarts: {c['restartCount']}"],
                        c["restartCount"])
            elif host_net:
                notes = self.install_network_config(pod)
                status = self.running(pod, self.address)
            elif network:
                ip = self._ip_for(pod, used)
                used.add(ip)
                status = self.running(pod, ip)
            else:
                status = self.waiting(pod)
            if status["phase"] == "Running":
                podlogs.record_start(pod, self.name, notes)
            status = run_to_completion(pod, status)
            if status != st:
                try:
                    self.client.merge_patch(f"/api/v1/namespaces/{pod['metadata']['namespace']}"
                                            f"/pods/{pod['metadata']['name']}/status",
                                            {"status": status})
                except ClientError as err:
                    if err.code != 404:
                        raise

    def running(self, pod: dict[str, Any], ip: str,
                before: dict[str, Any] | None = None) -> dict[str, Any]:
        """A Running status with every container ready; start times kept from `before`."""
        now = stamp()
        spec = pod["spec"]
        before = before or {}
        started = before.get("startTime") or now
        conds = [{"type": t, "status": "True", "lastTransitionTime": now} for t in (
            "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
            "PodScheduled")]
        earlier = {c.get("name"): c for c in [*(before.get("containerStatuses") or []),
                                              *(before.get("initContainerStatuses") or [])]}

        def cstatus(c: dict[str, Any], done: bool) -> dict[str, Any]:
            old = earlier.get(c["name"]) or {}
            state = old.get("state") or (
                {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started,
                                "finishedAt": started}} if done
                else {"running": {"startedAt": started}})
            return {"name": c["name"], "image": c.get("image", ""), "imageID": "",
                    "containerID": f"standin://{pod['metadata']['uid']}/{c['name']}",
                    "ready": not done, "started": not done,
                    "restartCount": int(old.get("restartCount", 0)), "state": state}
        status: dict[str, Any] = {
            "phase": "Running", "conditions": conds, "hostIP": self.address,
            "hostIPs": [{"ip": self.address}], "podIP": ip, "podIPs": [{"ip": ip}] if ip else [],
            "startTime": started, "qosClass": "BestEffort",
            "containerStatuses": [cstatus(c, False) for c in spec.get("containers") or []]}
        if spec.get("initContainers"):
            status["initContainerStatuses"] = [cstatus(c, True) for c in spec["initContainers"]]
        return status

    def waiting(self, pod: dict[str, Any]) -> dict[str, Any]:
        """Pending in ContainerCreating: the pod sandbox needs the network plugin."""
        now = stamp()
        return {"phase": "Pending", "hostIP": self.address, "startTime": now,
                "qosClass": "BestEffort",
                "conditions": [{"type": "PodScheduled", "status": "True",
                                "lastTransitionTime": now},
                               {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                                "lastTransitionTime": now}],
                "containerStatuses": [{"name": c["name"], "image": c.get("image", ""),
                                       "imageID": "", "ready": False, "started": False,
                                       "restartCount": 0, "state": {"waiting": {
                                           "reason": "ContainerCreating"}}}
                                      for c in pod["spec"].get("containers") or []]}

    def mirror_static_pods(self, pods: list[dict[str, Any]]) -> None:
        """Mirror pods for the manifests in staticPodPath, as the real kubelet posts them: a
        missing one is created, one whose manifest changed is replaced."""
        directory = p(str(self.config.get("staticPodPath", "/etc/kubernetes/manifests")))
        if not directory.is_dir():
            return
        mirrors = {(m["metadata"]["namespace"], m["metadata"]["name"]): m for m in pods
                   if MIRROR in (m["metadata"].get("annotations") or {})}
        changed: list[str] = []
        replace: list[tuple[str, str, dict[str, Any], bool]] = []
        for manifest in sorted(directory.glob("*.yaml")):
            text = manifest.read_text()
            pod = yaml.safe_load(text)
            name = f"{pod['metadata']['name']}-{self.name}"
            ns = pod["metadata"].get("namespace", "default")
            digest = hashlib.sha256(text.encode()).hexdigest()[:32]
            live = mirrors.get((ns, name))
            if live is not None and live["metadata"]["annotations"].get(CONFIG_HASH) == digest:
                continue
            pod["metadata"]["name"] = name
            pod["metadata"].setdefault("annotations", {}).update(
                {MIRROR: digest, CONFIG_HASH: digest, "kubernetes.io/config.source": "file"})
            pod["spec"]["nodeName"] = self.name
            if live is not None and manifest.name in services.APISERVER_MANIFESTS and \
                    self.restarted.get(manifest.name) != digest:
                self.restarted[manifest.name] = digest
                changed.append(manifest.name)
            replace.append((ns, name, pod, live is not None))
        if changed:
            # A changed manifest restarts its static pod: here the one service standing in for
            # both (restarted once for all the manifests changed together).
            log.info("static pod manifests %s changed: restarting %s", ", ".join(changed),
                     services.APISERVER)
            services.start_apiserver()
        for ns, name, pod, existed in replace:
            try:
                if existed:
                    self.client.delete(f"/api/v1/namespaces/{ns}/pods/{name}")
                self.client.post(f"/api/v1/namespaces/{ns}/pods", pod)
            except ClientError as err:
                if err.code not in (0, 404, 409):
                    raise

    # ---- loop ----
    def run(self) -> None:
        """Register, then heartbeat every period and sync pods every two seconds."""
        log.info("%s: kubelet %s starting for node %s", BANNER, git_version(), self.name)
        kubelet_server.serve(kubelet_server.KubeletState(self.name, self.config, self.client,
                                                         lambda: list(self.pods)))
        while not self.stop.is_set():
            try:
                self.register()
                break
            except ClientError as err:
                log.warning("unable to register node %s: %s", self.name, err.message)
                self.stop.wait(2)
        ticks = 0.0
        network = cni_ready()
        while not self.stop.is_set():
            # Post at once when the network plugin appears, not only on the next beat. The beat
            # goes on when syncing pods fails: it is what registers a deleted Node again.
            if ticks >= self.period or cni_ready() != network:
                try:
                    network = cni_ready()
                    self.heartbeat()
                    ticks = 0.0
                except ClientError as err:
                    log.warning("Error updating node status, will retry: %s", err.message)
            try:
                self.sync_pods()
            except ClientError as err:
                log.warning("sync failed: %s", err.message)
            self.stop.wait(2)
            ticks += 2


def run_to_completion(pod: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """Nothing runs, so a pod whose containers are not restarted (restartPolicy Never or
    OnFailure: Job pods, `kubectl run --restart=Never`) has them exit 0 at once and succeeds,
    as a real one does when its command ends."""
    if status.get("phase") != "Running" or \
            pod["spec"].get("restartPolicy", "Always") == "Always":
        return status
    now = stamp()
    done = dict(status, phase="Succeeded", conditions=[
        dict(c, status="False", reason="PodCompleted", lastTransitionTime=now)
        if c["type"] in ("Ready", "ContainersReady", "PodReadyToStartContainers") else c
        for c in status.get("conditions") or []])
    done["containerStatuses"] = [
        dict(c, ready=False, started=False, state={"terminated": {
            "exitCode": 0, "reason": "Completed",
            "startedAt": ((c.get("state") or {}).get("running") or {}).get("startedAt", now),
            "finishedAt": now, "containerID": c.get("containerID", "")}})
        for c in status.get("containerStatuses") or []]
    return done


def main(argv: list[str] | None = None) -> int:
    """Entry point of the kubelet service: exit 1 until kubeadm has written the config."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = p("/var/lib/kubelet/config.yaml")
    if not config.exists():
        print(f'"command failed" err="failed to load kubelet config file, path: '
              f'/var/lib/kubelet/config.yaml, error: open {config}: no such file or directory" '
              f"({BANNER})", file=sys.stderr)
        return 1
    kubelet = Kubelet()
    signal.signal(signal.SIGTERM, lambda *_: kubelet.stop.set())
    kubelet.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
