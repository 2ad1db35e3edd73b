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
