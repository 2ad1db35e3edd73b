"""Whole dashboard manifests for the stand-in tests, written here from the facts.

Shaped like Kubernetes Dashboard v2.7.0's `aio/deploy/recommended.yaml` and Headlamp's plain
manifest (facts.md sections 1 and 9): the same kinds, names, ports, probes, secrets and RBAC,
so the API server meets everything those manifests send. (`manifests.py` holds the smaller
Service and Deployment pairs the proxy tests need.)
"""

DASHBOARD_FULL = """\
apiVersion: v1
kind: Namespace
metadata: {name: kubernetes-dashboard}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: kubernetes-dashboard
  namespace: kubernetes-dashboard
  labels: {k8s-app: kubernetes-dashboard}
---
kind: Service
apiVersion: v1
metadata:
  name: kubernetes-dashboard
  namespace: kubernetes-dashboard
  labels: {k8s-app: kubernetes-dashboard}
spec:
  ports: [{port: 443, targetPort: 8443}]
  selector: {k8s-app: kubernetes-dashboard}
---
apiVersion: v1
kind: Secret
metadata:
  name: kubernetes-dashboard-certs
  namespace: kubernetes-dashboard
  labels: {k8s-app: kubernetes-dashboard}
type: Opaque
---
apiVersion: v1
kind: Secret
metadata:
  name: kubernetes-dashboard-csrf
  namespace: kubernetes-dashboard
  labels: {k8s-app: kubernetes-dashboard}
type: Opaque
data: {csrf: ""}
---
apiVersion: v1
kind: Secret
metadata:
  name: kubernetes-dashboard-key-holder
  namespace: kubernetes-dashboard
  labels: {k8s-app: kubernetes-dashboard}
type: Opaque
---
kind: ConfigMap
apiVersion: v1
metadata:
  name: kubernetes-dashboard-settings
  namespace: kubernetes-dashboard
  labels: {k8s-app: kubernetes-dashboard}
---
kind: Role
apiVersion: rbac.authorization.k8s.io/v1
metadata:
  name: kubernetes-dashboard
  namespace: kubernetes-dashboard
  labels: {k8s-app: kubernetes-dashboard}
rules:
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [kubernetes-dashboard-key-holder, kubernetes-dashboard-certs,
                  kubernetes-dashboard-csrf]
  verbs: [get, update, delete]
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [kubernetes-dashboard-settings]
  verbs: [get, update]
- apiGroups: [""]
  resources: [services]
  resourceNames: [heapster, dashboard-metrics-scraper]
  verbs: [proxy]
- apiGroups: [""]
  resources: [services/proxy]
  resourceNames: [heapster, "http:heapster:", "https:heapster:", dashboard-metrics-scraper,
                  "http:dashboard-metrics-scraper"]
  verbs: [get]
---
kind: ClusterRole
apiVersion: rbac.authorization.k8s.io/v1
metadata:
  name: kubernetes-dashboard
  labels: {k8s-app: kubernetes-dashboard}
rules:
- apiGroups: [metrics.k8s.io]
  resources: [pods, nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: kubernetes-dashboard
  namespace: kubernetes-dashboard
  labels: {k8s-app: kubernetes-dashboard}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: kubernetes-dashboard}
subjects:
- {kind: ServiceAccount, name: kubernetes-dashboard, namespace: kubernetes-dashboard}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kubernetes-dashboard
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubernetes-dashboard}
subjects:
- {kind: ServiceAccount, name: kubernetes-dashboard, namespace: kubernetes-dashboard}
---
kind: Deployment
apiVersion: apps/v1
metadata:
  name: kubernetes-dashboard
  namespace: kubernetes-dashboard
  labels: {k8s-app: kubernetes-dashboard}
spec:
  replicas: 1
  revisionHistoryLimit: 10
  selector:
    matchLabels: {k8s-app: kubernetes-dashboard}
  template:
    metadata:
      labels: {k8s-app: kubernetes-dashboard}
    spec:
      securityContext:
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: kubernetes-dashboard
        image: kubernetesui/dashboard:v2.7.0
        imagePullPolicy: Always
        ports: [{containerPort: 8443, protocol: TCP}]
        args: [--auto-generate-certificates, --namespace=kubernetes-dashboard]
        volumeMounts:
        - {name: kubernetes-dashboard-certs, mountPath: /certs}
        - {mountPath: /tmp, name: tmp-volume}
        livenessProbe:
          httpGet: {scheme: HTTPS, path: /, port: 8443}
          initialDelaySeconds: 30
          timeoutSeconds: 30
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          runAsUser: 1001
          runAsGroup: 2001
      volumes:
      - name: kubernetes-dashboard-certs
        secret: {secretName: kubernetes-dashboard-certs}
      - {name: tmp-volume, emptyDir: {}}
      serviceAccountName: kubernetes-dashboard
      nodeSelector: {"kubernetes.io/os": linux}
      tolerations:
      - {key: node-role.kubernetes.io/master, effect: NoSchedule}
---
kind: Service
apiVersion: v1
metadata:
  name: dashboard-metrics-scraper
  namespace: kubernetes-dashboard
  labels: {k8s-app: dashboard-metrics-scraper}
spec:
  ports: [{port: 8000, targetPort: 8000}]
  selector: {k8s-app: dashboard-metrics-scraper}
---
kind: Deployment
apiVersion: apps/v1
metadata:
  name: dashboard-metrics-scraper
  namespace: kubernetes-dashboard
  labels: {k8s-app: dashboard-metrics-scraper}
spec:
  replicas: 1
  revisionHistoryLimit: 10
  selector:
    matchLabels: {k8s-app: dashboard-metrics-scraper}
  template:
    metadata:
      labels: {k8s-app: dashboard-metrics-scraper}
    spec:
      securityContext:
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: dashboard-metrics-scraper
        image: kubernetesui/metrics-scraper:v1.0.8
        ports: [{containerPort: 8000, protocol: TCP}]
        livenessProbe:
          httpGet: {scheme: HTTP, path: /, port: 8000}
          initialDelaySeconds: 30
          timeoutSeconds: 30
        volumeMounts: [{mountPath: /tmp, name: tmp-volume}]
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          runAsUser: 1001
          runAsGroup: 2001
      serviceAccountName: kubernetes-dashboard
      nodeSelector: {"kubernetes.io/os": linux}
      tolerations:
      - {key: node-role.kubernetes.io/master, effect: NoSchedule}
      volumes:
      - {name: tmp-volume, emptyDir: {}}
"""

HEADLAMP_FULL = """\
kind: Service
apiVersion: v1
metadata:
  name: headlamp
  namespace: kube-system
spec:
  ports: [{port: 80, targetPort: 4466}]
  selector: {k8s-app: headlamp}
---
kind: Deployment
apiVersion: apps/v1
metadata:
  name: headlamp
  namespace: kube-system
spec:
  replicas: 1
  selector:
    matchLabels: {k8s-app: headlamp}
  template:
    metadata:
      labels: {k8s-app: headlamp}
    spec:
      containers:
      - name: headlamp
        image: ghcr.io/headlamp-k8s/headlamp:v0.39.0
        args: [-in-cluster, -plugins-dir=/headlamp/plugins]
        ports: [{containerPort: 4466}]
        readinessProbe:
          httpGet: {scheme: HTTP, path: /, port: 4466}
          initialDelaySeconds: 30
          timeoutSeconds: 30
        livenessProbe:
          httpGet: {scheme: HTTP, path: /, port: 4466}
          initialDelaySeconds: 30
          timeoutSeconds: 30
      nodeSelector: {"kubernetes.io/os": linux}
---
kind: ServiceAccount
apiVersion: v1
metadata:
  name: headlamp-admin
  namespace: kube-system
---
kind: ClusterRoleBinding
apiVersion: rbac.authorization.k8s.io/v1
metadata:
  name: headlamp-admin
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: ServiceAccount, name: headlamp-admin, namespace: kube-system}
---
kind: Secret
apiVersion: v1
type: kubernetes.io/service-account-token
metadata:
  name: headlamp-admin
  namespace: kube-system
  annotations: {kubernetes.io/service-account.name: headlamp-admin}
"""
