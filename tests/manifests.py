"""Manifests shared by the stand-in tests."""

# Shaped like flannel's kube-flannel.yml (facts.md section 4): an init container copies the CNI
# config from a ConfigMap volume into the host's /etc/cni/net.d, as the real one does.
FLANNEL_LIKE = """\
apiVersion: v1
kind: Namespace
metadata: {name: kube-flannel}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: flannel, namespace: kube-flannel}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kube-flannel-cfg, namespace: kube-flannel}
data:
  cni-conf.json: |
    {"name": "cbr0", "cniVersion": "0.3.1",
     "plugins": [{"type": "flannel", "delegate": {"hairpinMode": true,
                  "isDefaultGateway": true}},
                 {"type": "portmap", "capabilities": {"portMappings": true}}]}
  net-conf.json: '{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}'
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kube-flannel-ds, namespace: kube-flannel}
spec:
  selector: {matchLabels: {app: flannel}}
  template:
    metadata: {labels: {app: flannel}}
    spec:
      hostNetwork: true
      serviceAccountName: flannel
      tolerations: [{operator: Exists, effect: NoSchedule}]
      initContainers:
      - name: install-cni
        image: ghcr.io/flannel-io/flannel:v0.28.0
        command: [cp]
        args: [-f, /etc/kube-flannel/cni-conf.json, /etc/cni/net.d/10-flannel.conflist]
        volumeMounts:
        - {name: cni, mountPath: /etc/cni/net.d}
        - {name: flannel-cfg, mountPath: /etc/kube-flannel/}
      containers:
      - name: kube-flannel
        image: ghcr.io/flannel-io/flannel:v0.28.0
        args: [--ip-masq, --kube-subnet-mgr]
      volumes:
      - {name: cni, hostPath: {path: /etc/cni/net.d}}
      - {name: flannel-cfg, configMap: {name: kube-flannel-cfg}}
"""

# Shaped like flannel v0.28.6 and later (facts.md sections 4 and 9): the CNI plugin binary is
# copied from its own image, and the CNI config is installed by `/opt/bin/install-conf SRC DST`
# (an atomic copy) instead of `cp`. Main container with flannel's healthz port and probes.
FLANNEL_INSTALL_CONF = FLANNEL_LIKE.split("---\napiVersion: apps/v1")[0] + """\
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kube-flannel-ds
  namespace: kube-flannel
  labels: {app: flannel, k8s-app: flannel, tier: node}
spec:
  selector: {matchLabels: {app: flannel}}
  template:
    metadata: {labels: {app: flannel, tier: node}}
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{key: kubernetes.io/os, operator: In, values: [linux]}]
      hostNetwork: true
      priorityClassName: system-node-critical
      serviceAccountName: flannel
      tolerations: [{operator: Exists, effect: NoSchedule}]
      initContainers:
      - name: install-cni-plugin
        image: ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3
        command: [cp]
        args: [-f, /flannel, /opt/cni/bin/flannel]
        volumeMounts: [{name: cni-plugin, mountPath: /opt/cni/bin}]
      - name: install-cni
        image: ghcr.io/flannel-io/flannel:v0.28.9
        command: [/opt/bin/install-conf]
        args: [/etc/kube-flannel/cni-conf.json, /etc/cni/net.d/10-flannel.conflist]
        volumeMounts:
        - {name: cni, mountPath: /etc/cni/net.d}
        - {name: flannel-cfg, mountPath: /etc/kube-flannel/}
      containers:
      - name: kube-flannel
        image: ghcr.io/flannel-io/flannel:v0.28.9
        command: [/opt/bin/flanneld]
        args: [--ip-masq, --kube-subnet-mgr, --healthz-port=8081]
        ports: [{name: healthz, containerPort: 8081, protocol: TCP}]
        readinessProbe: {httpGet: {path: /readyz, port: healthz}, periodSeconds: 10}
        livenessProbe: {httpGet: {path: /healthz, port: healthz}, periodSeconds: 30}
        securityContext: {privileged: false, capabilities: {add: [NET_ADMIN, NET_RAW]}}
        volumeMounts:
        - {name: run, mountPath: /run/flannel}
        - {name: flannel-cfg, mountPath: /etc/kube-flannel/}
        - {name: xtables-lock, mountPath: /run/xtables.lock}
      volumes:
      - {name: run, hostPath: {path: /run/flannel}}
      - {name: cni-plugin, hostPath: {path: /opt/cni/bin}}
      - {name: cni, hostPath: {path: /etc/cni/net.d}}
      - {name: flannel-cfg, configMap: {name: kube-flannel-cfg}}
      - {name: xtables-lock, hostPath: {path: /run/xtables.lock, type: FileOrCreate}}
"""

# Shaped like Headlamp's plain manifest (facts.md sections 1 and 9): Service `headlamp` in
# kube-system, port 80 to the container's 4466, reached as `services/http:headlamp:/proxy/`.
HEADLAMP_SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: headlamp, namespace: kube-system}
spec:
  selector: {k8s-app: headlamp}
  ports: [{port: 80, targetPort: 4466}]
"""
HEADLAMP_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: headlamp, namespace: kube-system}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: headlamp}}
  template:
    metadata: {labels: {k8s-app: headlamp}}
    spec:
      containers:
      - name: headlamp
        image: ghcr.io/headlamp-k8s/headlamp:v0.38.0
        args: [-in-cluster, -plugins-dir=/headlamp/plugins]
        ports: [{name: http, containerPort: 4466}]
"""

# Shaped like Kubernetes Dashboard 2.7.0 (facts.md section 9): HTTPS Service 443 -> 8443 in
# its own namespace, reached as `services/https:kubernetes-dashboard:/proxy/`.
DASHBOARD_LIKE = """\
apiVersion: v1
kind: Namespace
metadata: {name: kubernetes-dashboard}
---
apiVersion: v1
kind: Service
metadata: {name: kubernetes-dashboard, namespace: kubernetes-dashboard,
           labels: {k8s-app: kubernetes-dashboard}}
spec:
  selector: {k8s-app: kubernetes-dashboard}
  ports: [{port: 443, targetPort: 8443}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kubernetes-dashboard, namespace: kubernetes-dashboard}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kubernetes-dashboard}}
  template:
    metadata: {labels: {k8s-app: kubernetes-dashboard}}
    spec:
      containers:
      - name: kubernetes-dashboard
        image: kubernetesui/dashboard:v2.7.0
        args: [--auto-generate-certificates, --namespace=kubernetes-dashboard]
        ports: [{containerPort: 8443, protocol: TCP}]
"""
