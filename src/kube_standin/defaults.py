"""Defaulting, as the real server applies it to every object it stores (create and update).

The values are facts of each group's `SetDefaults_*` functions (`pkg/apis/*/v1/defaults.go`):
what `kubectl get -o yaml` shows beyond what was sent, and what clients read back
(`kubectl rollout status` needs a DaemonSet's `updateStrategy`, for instance).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
DEFAULT_MODE = 0o644  # 420: Secret, ConfigMap, downward API and projected volumes


def _image_pull_policy(image: str) -> str:
    name = image.split("@")[0]
    if "@" in image:
        return "IfNotPresent"
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _probe(probe: Obj | None) -> None:
    if not probe:
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):
        probe.setdefault(key, value)
    if "httpGet" in probe:
        probe["httpGet"].setdefault("path", "/")
        probe["httpGet"].setdefault("scheme", "HTTP")


def _field_refs(items: list[Obj]) -> None:
    for item in items:
        if item.get("fieldRef"):
            item["fieldRef"].setdefault("apiVersion", "v1")


def container(c: Obj) -> None:
    """Container defaults."""
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if c.get("image") and not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = _image_pull_policy(c["image"])
    c.setdefault("resources", {})
    for port in c.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(key))
    for env in c.get("env") or []:
        _field_refs([env.get("valueFrom") or {}])
    lifecycle = c.get("lifecycle") or {}
    for hook in (lifecycle.get("postStart"), lifecycle.get("preStop")):
        if hook and "httpGet" in hook:
            hook["httpGet"].setdefault("path", "/")
            hook["httpGet"].setdefault("scheme", "HTTP")


def volume(v: Obj) -> None:
    """Volume defaults: an empty volume is an emptyDir; file modes 0644."""
    sources = [k for k in v if k != "name"]
    if not sources:
        v["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        if key in v and isinstance(v[key], dict):
            v[key].setdefault("defaultMode", DEFAULT_MODE)
    if "hostPath" in v and isinstance(v["hostPath"], dict):
        v["hostPath"].setdefault("type", "")
    _field_refs((v.get("downwardAPI") or {}).get("items") or [])
    for source in (v.get("projected") or {}).get("sources") or []:
        if source.get("serviceAccountToken"):
            source["serviceAccountToken"].setdefault("expirationSeconds", 3600)
        _field_refs((source.get("downwardAPI") or {}).get("items") or [])


def pod_spec(spec: Obj) -> None:
    """PodSpec defaults (pods and pod templates alike)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    if spec.get("serviceAccountName") and not spec.get("serviceAccount"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    elif spec.get("serviceAccount") and not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        container(c)
    for v in spec.get("volumes") or []:
        volume(v)


def pod(obj: Obj) -> None:
    """Pod defaults: the spec's, plus what only pods get."""
    spec = obj.setdefault("spec", {})
    pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        res = c.get("resources") or {}
        if res.get("limits") and not res.get("requests"):
            res["requests"] = dict(res["limits"])  # requests default to limits
        if spec.get("hostNetwork"):
            for port in c.get("ports") or []:
                port.setdefault("hostPort", port.get("containerPort"))


def _template(obj: Obj) -> None:
    template = obj.setdefault("spec", {}).setdefault("template", {})
    template.setdefault("metadata", {})
    pod_spec(template.setdefault("spec", {}))


def deployment(obj: Obj) -> None:
    """Deployment defaults."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _template(obj)


def daemonset(obj: Obj) -> None:
    """DaemonSet defaults: `kubectl rollout status ds/...` needs the update strategy."""
    spec = obj.setdefault("spec", {})
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _template(obj)


def replicaset(obj: Obj) -> None:
    """ReplicaSet defaults."""
    obj.setdefault("spec", {}).setdefault("replicas", 1)
    _template(obj)


def job(obj: Obj) -> None:
    """Job defaults."""
    spec = obj.setdefault("spec", {})
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    if not spec.get("podFailurePolicy"):
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    _template(obj)


def service(obj: Obj) -> None:
    """Service defaults (cluster IPs are allocated by the server, not defaulted)."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    kind = spec["type"]
    if kind in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if kind != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    if spec["sessionAffinity"] == "ClientIP":
        spec.setdefault("sessionAffinityConfig", {}).setdefault("clientIP", {}).setdefault(
            "timeoutSeconds", 10800)
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def namespace(obj: Obj) -> None:
    """Namespaces are Active and carry the `kubernetes` finalizer."""
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


def secret(obj: Obj) -> None:
    """Secrets are Opaque unless typed."""
    obj.setdefault("type", "Opaque")


def endpoints(obj: Obj) -> None:
    """Endpoint ports are TCP unless said."""
    for subset in obj.get("subsets") or []:
        for port in subset.get("ports") or []:
            port.setdefault("protocol", "TCP")


def _subjects(obj: Obj) -> None:
    for s in obj.get("subjects") or []:
        if s.get("kind") in ("User", "Group"):
            s.setdefault("apiGroup", "rbac.authorization.k8s.io")


DEFAULTERS = {
    "Pod": pod, "Deployment": deployment, "DaemonSet": daemonset, "ReplicaSet": replicaset,
    "Job": job, "Service": service, "Namespace": namespace, "Secret": secret,
    "Endpoints": endpoints, "RoleBinding": _subjects, "ClusterRoleBinding": _subjects,
}


def apply(kind: str, obj: Obj) -> None:
    """Fill in the defaults of `obj` in place."""
    fn = DEFAULTERS.get(kind)
    if fn is not None:
        fn(obj)
