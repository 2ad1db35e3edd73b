"""Protobuf message tables for the kinds the API server stand-in serves.

Field numbers are facts of the published Kubernetes API (each group's `generated.proto`); the
tables are written here in a compact form: `number jsonName type` triples. Types:

  s string   i integer   b bool   y bytes (base64 in JSON)   t Time   mt MicroTime
  q Quantity   ios IntOrString   raw RawExtension (embedded JSON)   fv1 FieldsV1
  Name  a message below   ^Name  a message embedded inline (its fields sit in the parent)
  [T]  repeated   {T}  map from string to T   {xv}  map to a list of strings (ExtraValue)
  a trailing !  the Go field keeps its zero value in JSON (a pointer, or no `omitempty`)

Messages that share a name across groups are prefixed by group (`discovery.EndpointPort`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Field:
    """One field of a message."""

    number: int
    name: str
    type: str
    repeated: bool = False
    map: bool = False
    inline: bool = False
    keep_zero: bool = False


@dataclass
class Message:
    """A message table: its fields by number, in number order, and its JSON names."""

    by_number: dict[int, Field] = field(default_factory=dict)
    ordered: list[Field] = field(default_factory=list)
    json_names: set[str] = field(default_factory=set)


MESSAGES: dict[str, Message] = {}
_TYPE = re.compile(r"^(\^)?(\[|\{)?([\w.]+)[\]}]?(!)?$")


def define(name: str, spec: str) -> None:
    """Add a message table from `number jsonName type` triples."""
    words = spec.split()
    if len(words) % 3:
        raise ValueError(f"{name}: fields come in triples")
    msg = Message()
    for i in range(0, len(words), 3):
        number, json_name, text = int(words[i]), words[i + 1], words[i + 2]
        m = _TYPE.match(text)
        if m is None:
            raise ValueError(f"{name}.{json_name}: bad type {text}")
        inline, bracket, base, keep = m.groups()
        f = Field(number, json_name, base, repeated=bracket == "[", map=bracket == "{",
                  inline=bool(inline), keep_zero=bool(keep))
        if number in msg.by_number:
            raise ValueError(f"{name}: field {number} twice")
        msg.by_number[number] = f
    msg.ordered = sorted(msg.by_number.values(), key=lambda f: f.number)
    MESSAGES[name] = msg


def _resolve() -> None:
    """Check every referenced message exists and collect JSON names (inline ones too)."""
    scalars = {"s", "i", "b", "y", "t", "mt", "q", "ios", "raw", "fv1", "xv"}

    def names(message: str) -> set[str]:
        out: set[str] = set()
        for f in MESSAGES[message].ordered:
            if f.type not in scalars and f.type not in MESSAGES:
                raise ValueError(f"{message}.{f.name}: unknown message {f.type}")
            out |= names(f.type) if f.inline else {f.name}
        return out

    for name, msg in MESSAGES.items():
        msg.json_names = names(name)


# ---- meta/v1, runtime, util ----
define("ObjectMeta", """
  1 name s  2 generateName s  3 namespace s  4 selfLink s  5 uid s  6 resourceVersion s
  7 generation i  8 creationTimestamp t  9 deletionTimestamp t  10 deletionGracePeriodSeconds i!
  11 labels {s}  12 annotations {s}  13 ownerReferences [OwnerReference]  14 finalizers [s]
  17 managedFields [ManagedFieldsEntry]""")
define("OwnerReference", """
  1 kind s!  3 name s!  4 uid s!  5 apiVersion s!  6 controller b!  7 blockOwnerDeletion b!""")
define("ManagedFieldsEntry", """
  1 manager s  2 operation s  3 apiVersion s  4 time t  6 fieldsType s  7 fieldsV1 fv1
  8 subresource s""")
define("ListMeta", "1 selfLink s  2 resourceVersion s  3 continue s  4 remainingItemCount i!")
define("LabelSelector", "1 matchLabels {s}  2 matchExpressions [LabelSelectorRequirement]")
define("LabelSelectorRequirement", "1 key s!  2 operator s  3 values [s]")
define("Status", """
  1 metadata ListMeta  2 status s  3 message s  4 reason s  5 details StatusDetails  6 code i""")
define("StatusDetails", """
  1 name s  2 group s  3 kind s  4 causes [StatusCause]  5 retryAfterSeconds i  6 uid s""")
define("StatusCause", "1 reason s  2 message s  3 field s")
define("DeleteOptions", """
  1 gracePeriodSeconds i!  2 preconditions Preconditions  3 orphanDependents b!
  4 propagationPolicy s!  5 dryRun [s]  6 ignoreStoreReadErrorWithClusterBreakingPotential b!""")
define("Preconditions", "1 uid s!  2 resourceVersion s!")
define("Condition", """
  1 type s!  2 status s!  3 observedGeneration i  4 lastTransitionTime t  5 reason s!
  6 message s!""")

# ---- core/v1 ----
define("Namespace", "1 metadata ObjectMeta  2 spec NamespaceSpec  3 status NamespaceStatus")
define("NamespaceSpec", "1 finalizers [s]")
define("NamespaceStatus", "1 phase s  2 conditions [NamespaceCondition]")
define("NamespaceCondition", """
  1 type s  2 status s  4 lastTransitionTime t  5 reason s  6 message s""")
define("Node", "1 metadata ObjectMeta  2 spec NodeSpec  3 status NodeStatus")
define("NodeSpec", """
  1 podCIDR s  2 externalID s  3 providerID s  4 unschedulable b  5 taints [Taint]
  6 configSource NodeConfigSource  7 podCIDRs [s]""")
define("Taint", "1 key s!  2 value s  3 effect s  4 timeAdded t")
define("NodeConfigSource", "2 configMap ConfigMapNodeConfigSource")
define("ConfigMapNodeConfigSource", """
  1 namespace s!  2 name s!  3 uid s  4 resourceVersion s  5 kubeletConfigKey s!""")
define("NodeStatus", """
  1 capacity {q}  2 allocatable {q}  3 phase s  4 conditions [NodeCondition]
  5 addresses [NodeAddress]  6 daemonEndpoints NodeDaemonEndpoints  7 nodeInfo NodeSystemInfo
  8 images [ContainerImage]  9 volumesInUse [s]  10 volumesAttached [AttachedVolume]
  11 config NodeConfigStatus  12 runtimeHandlers [NodeRuntimeHandler]  13 features NodeFeatures
  14 declaredFeatures [s]""")
define("NodeCondition", """
  1 type s  2 status s  3 lastHeartbeatTime t  4 lastTransitionTime t  5 reason s
  6 message s""")
define("NodeAddress", "1 type s  2 address s!")
define("NodeDaemonEndpoints", "1 kubeletEndpoint DaemonEndpoint")
define("DaemonEndpoint", "1 Port i!")
define("NodeSystemInfo", """
  1 machineID s!  2 systemUUID s!  3 bootID s!  4 kernelVersion s!  5 osImage s!
  6 containerRuntimeVersion s!  7 kubeletVersion s!  8 kubeProxyVersion s!
  9 operatingSystem s!  10 architecture s!  11 swap NodeSwapStatus""")
define("NodeSwapStatus", "1 capacity i!")
define("ContainerImage", "1 names [s]  2 sizeBytes i")
define("AttachedVolume", "1 name s  2 devicePath s!")
define("NodeConfigStatus", """
  1 assigned NodeConfigSource  2 active NodeConfigSource  3 lastKnownGood NodeConfigSource
  4 error s""")
define("NodeRuntimeHandler", "1 name s!  2 features NodeRuntimeHandlerFeatures")
define("NodeRuntimeHandlerFeatures", "1 recursiveReadOnlyMounts b!  2 userNamespaces b!")
define("NodeFeatures", "1 supplementalGroupsPolicy b!")

define("Secret", """
  1 metadata ObjectMeta  2 data {y}  3 type s  4 stringData {s}  5 immutable b!""")
define("ConfigMap", "1 metadata ObjectMeta  2 data {s}  3 binaryData {y}  4 immutable b!")
define("ServiceAccount", """
  1 metadata ObjectMeta  2 secrets [ObjectReference]  3 imagePullSecrets [LocalObjectReference]
  4 automountServiceAccountToken b!""")
define("ObjectReference", """
  1 kind s  2 namespace s  3 name s  4 uid s  5 apiVersion s  6 resourceVersion s
  7 fieldPath s""")
define("LocalObjectReference", "1 name s")
define("Endpoints", "1 metadata ObjectMeta  2 subsets [EndpointSubset]")
define("EndpointSubset", """
  1 addresses [EndpointAddress]  2 notReadyAddresses [EndpointAddress]  3 ports [EndpointPort]""")
define("EndpointAddress", "1 ip s!  2 targetRef ObjectReference  3 hostname s  4 nodeName s!")
define("EndpointPort", "1 name s  2 port i!  3 protocol s  4 appProtocol s!")
define("Event", """
  1 metadata ObjectMeta  2 involvedObject ObjectReference  3 reason s  4 message s
  5 source EventSource  6 firstTimestamp t  7 lastTimestamp t  8 count i  9 type s
  10 eventTime mt  11 series EventSeries  12 action s  13 related ObjectReference
  14 reportingComponent s!  15 reportingInstance s!""")
define("EventSource", "1 component s  2 host s")
define("EventSeries", "1 count i  2 lastObservedTime mt")
define("Binding", "1 metadata ObjectMeta  2 target ObjectReference")

define("Service", "1 metadata ObjectMeta  2 spec ServiceSpec  3 status ServiceStatus")
define("ServiceSpec", """
  1 ports [ServicePort]  2 selector {s}  3 clusterIP s  4 type s  5 externalIPs [s]
  7 sessionAffinity s  8 loadBalancerIP s  9 loadBalancerSourceRanges [s]  10 externalName s
  11 externalTrafficPolicy s  12 healthCheckNodePort i  13 publishNotReadyAddresses b
  14 sessionAffinityConfig SessionAffinityConfig  17 ipFamilyPolicy s!  18 clusterIPs [s]
  19 ipFamilies [s]  20 allocateLoadBalancerNodePorts b!  21 loadBalancerClass s!
  22 internalTrafficPolicy s!  23 trafficDistribution s!""")
define("ServicePort", """
  1 name s  2 protocol s  3 port i!  4 targetPort ios  5 nodePort i  6 appProtocol s!""")
define("SessionAffinityConfig", "1 clientIP ClientIPConfig")
define("ClientIPConfig", "1 timeoutSeconds i!")
define("ServiceStatus", "1 loadBalancer LoadBalancerStatus  2 conditions [Condition]")
define("LoadBalancerStatus", "1 ingress [LoadBalancerIngress]")
define("LoadBalancerIngress", "1 ip s  2 hostname s  3 ipMode s!  4 ports [PortStatus]")
define("PortStatus", "1 port i!  2 protocol s!  3 error s!")

# Pods: the spec, its containers and volumes.
define("Pod", "1 metadata ObjectMeta  2 spec PodSpec  3 status PodStatus")
define("PodTemplateSpec", "1 metadata ObjectMeta  2 spec PodSpec")
define("PodSpec", """
  1 volumes [Volume]  2 containers [Container]  3 restartPolicy s
  4 terminationGracePeriodSeconds i!  5 activeDeadlineSeconds i!  6 dnsPolicy s
  7 nodeSelector {s}  8 serviceAccountName s  9 serviceAccount s  10 nodeName s
  11 hostNetwork b  12 hostPID b  13 hostIPC b  14 securityContext PodSecurityContext
  15 imagePullSecrets [LocalObjectReference]  16 hostname s  17 subdomain s
  18 affinity Affinity  19 schedulerName s  20 initContainers [Container]
  21 automountServiceAccountToken b!  22 tolerations [Toleration]  23 hostAliases [HostAlias]
  24 priorityClassName s  25 priority i!  26 dnsConfig PodDNSConfig
  27 shareProcessNamespace b!  28 readinessGates [PodReadinessGate]  29 runtimeClassName s!
  30 enableServiceLinks b!  31 preemptionPolicy s!  32 overhead {q}
  33 topologySpreadConstraints [TopologySpreadConstraint]  35 setHostnameAsFQDN b!  36 os PodOS
  37 hostUsers b!  38 schedulingGates [PodSchedulingGate]  39 resourceClaims [PodResourceClaim]
  40 resources ResourceRequirements  41 hostnameOverride s!""")
define("Container", """
  1 name s!  2 image s  3 command [s]  4 args [s]  5 workingDir s  6 ports [ContainerPort]
  7 env [EnvVar]  8 resources ResourceRequirements  9 volumeMounts [VolumeMount]
  10 livenessProbe Probe  11 readinessProbe Probe  12 lifecycle Lifecycle
  13 terminationMessagePath s  14 imagePullPolicy s  15 securityContext SecurityContext
  16 stdin b  17 stdinOnce b  18 tty b  19 envFrom [EnvFromSource]
  20 terminationMessagePolicy s  21 volumeDevices [VolumeDevice]  22 startupProbe Probe
  23 resizePolicy [ContainerResizePolicy]  24 restartPolicy s!
  25 restartPolicyRules [ContainerRestartRule]""")
define("ContainerPort", "1 name s  2 hostPort i  3 containerPort i!  4 protocol s  5 hostIP s")
define("ContainerResizePolicy", "1 resourceName s  2 restartPolicy s")
define("ContainerRestartRule", "1 action s  2 exitCodes ContainerRestartRuleOnExitCodes")
define("ContainerRestartRuleOnExitCodes", "1 operator s  2 values [i]")
define("EnvVar", "1 name s!  2 value s  3 valueFrom EnvVarSource")
define("EnvVarSource", """
  1 fieldRef ObjectFieldSelector  2 resourceFieldRef ResourceFieldSelector
  3 configMapKeyRef ConfigMapKeySelector  4 secretKeyRef SecretKeySelector
  5 fileKeyRef FileKeySelector""")
define("ObjectFieldSelector", "1 apiVersion s  2 fieldPath s!")
define("ResourceFieldSelector", "1 containerName s  2 resource s!  3 divisor q")
define("ConfigMapKeySelector", """
  1 localObjectReference ^LocalObjectReference  2 key s!  3 optional b!""")
define("SecretKeySelector", "1 localObjectReference ^LocalObjectReference  2 key s!  3 optional b!")
define("FileKeySelector", "1 volumeName s!  2 path s!  3 key s!  4 optional b!")
define("EnvFromSource", """
  1 prefix s  2 configMapRef ConfigMapEnvSource  3 secretRef SecretEnvSource""")
define("ConfigMapEnvSource", "1 localObjectReference ^LocalObjectReference  2 optional b!")
define("SecretEnvSource", "1 localObjectReference ^LocalObjectReference  2 optional b!")
define("ResourceRequirements", "1 limits {q}  2 requests {q}  3 claims [ResourceClaim]")
define("ResourceClaim", "1 name s!  2 request s")
define("VolumeMount", """
  1 name s!  2 readOnly b  3 mountPath s!  4 subPath s  5 mountPropagation s!  6 subPathExpr s
  7 recursiveReadOnly s!  8 bindMountOptions [s]""")
define("VolumeDevice", "1 name s!  2 devicePath s!")
define("Probe", """
  1 handler ^ProbeHandler  2 initialDelaySeconds i  3 timeoutSeconds i  4 periodSeconds i
  5 successThreshold i  6 failureThreshold i  7 terminationGracePeriodSeconds i!""")
define("ProbeHandler", """
  1 exec ExecAction  2 httpGet HTTPGetAction  3 tcpSocket TCPSocketAction  4 grpc GRPCAction""")
define("ExecAction", "1 command [s]")
define("HTTPGetAction", """
  1 path s  2 port ios  3 host s  4 scheme s  5 httpHeaders [HTTPHeader]  6 protocol s""")
define("HTTPHeader", "1 name s!  2 value s!")
define("TCPSocketAction", "1 port ios  2 host s")
define("GRPCAction", "1 port i!  2 service s!  3 mode s")
define("Lifecycle", "1 postStart LifecycleHandler  2 preStop LifecycleHandler  3 stopSignal s!")
define("LifecycleHandler", """
  1 exec ExecAction  2 httpGet HTTPGetAction  3 tcpSocket TCPSocketAction  4 sleep SleepAction""")
define("SleepAction", "1 seconds i!")
define("SecurityContext", """
  1 capabilities Capabilities  2 privileged b!  3 seLinuxOptions SELinuxOptions  4 runAsUser i!
  5 runAsNonRoot b!  6 readOnlyRootFilesystem b!  7 allowPrivilegeEscalation b!  8 runAsGroup i!
  9 procMount s!  10 windowsOptions WindowsSecurityContextOptions
  11 seccompProfile SeccompProfile  12 appArmorProfile AppArmorProfile""")
define("Capabilities", "1 add [s]  2 drop [s]")
define("SELinuxOptions", "1 user s  2 role s  3 type s  4 level s")
define("WindowsSecurityContextOptions", """
  1 gmsaCredentialSpecName s!  2 gmsaCredentialSpec s!  3 runAsUserName s!  4 hostProcess b!""")
define("SeccompProfile", "1 type s  2 localhostProfile s!")
define("AppArmorProfile", "1 type s  2 localhostProfile s!")
define("PodSecurityContext", """
  1 seLinuxOptions SELinuxOptions  2 runAsUser i!  3 runAsNonRoot b!  4 supplementalGroups [i]
  5 fsGroup i!  6 runAsGroup i!  7 sysctls [Sysctl]  8 windowsOptions WindowsSecurityContextOptions
  9 fsGroupChangePolicy s!  10 seccompProfile SeccompProfile  11 appArmorProfile AppArmorProfile
  12 supplementalGroupsPolicy s!  13 seLinuxChangePolicy s!""")
define("Sysctl", "1 name s!  2 value s!")
define("Toleration", "1 key s  2 operator s  3 value s  4 effect s  5 tolerationSeconds i!")
define("Affinity", """
  1 nodeAffinity NodeAffinity  2 podAffinity PodAffinity  3 podAntiAffinity PodAntiAffinity""")
define("NodeAffinity", """
  1 requiredDuringSchedulingIgnoredDuringExecution NodeSelector
  2 preferredDuringSchedulingIgnoredDuringExecution [PreferredSchedulingTerm]""")
define("NodeSelector", "1 nodeSelectorTerms [NodeSelectorTerm]")
define("NodeSelectorTerm", """
  1 matchExpressions [NodeSelectorRequirement]  2 matchFields [NodeSelectorRequirement]""")
define("NodeSelectorRequirement", "1 key s!  2 operator s  3 values [s]")
define("PreferredSchedulingTerm", "1 weight i!  2 preference NodeSelectorTerm")
define("PodAffinity", """
  1 requiredDuringSchedulingIgnoredDuringExecution [PodAffinityTerm]
  2 preferredDuringSchedulingIgnoredDuringExecution [WeightedPodAffinityTerm]""")
define("PodAntiAffinity", """
  1 requiredDuringSchedulingIgnoredDuringExecution [PodAffinityTerm]
  2 preferredDuringSchedulingIgnoredDuringExecution [WeightedPodAffinityTerm]""")
define("PodAffinityTerm", """
  1 labelSelector LabelSelector  2 namespaces [s]  3 topologyKey s!
  4 namespaceSelector LabelSelector  5 matchLabelKeys [s]  6 mismatchLabelKeys [s]""")
define("WeightedPodAffinityTerm", "1 weight i!  2 podAffinityTerm PodAffinityTerm")
define("TopologySpreadConstraint", """
  1 maxSkew i!  2 topologyKey s!  3 whenUnsatisfiable s  4 labelSelector LabelSelector
  5 minDomains i!  6 nodeAffinityPolicy s!  7 nodeTaintsPolicy s!  8 matchLabelKeys [s]""")
define("HostAlias", "1 ip s!  2 hostnames [s]")
define("PodDNSConfig", "1 nameservers [s]  2 searches [s]  3 options [PodDNSConfigOption]")
define("PodDNSConfigOption", "1 name s  2 value s!")
define("PodReadinessGate", "1 conditionType s")
define("PodOS", "1 name s")
define("PodSchedulingGate", "1 name s!")
define("PodResourceClaim", """
  1 name s!  3 resourceClaimName s!  4 resourceClaimTemplateName s!""")
define("Volume", "1 name s!  2 volumeSource ^VolumeSource")
define("VolumeSource", """
  1 hostPath HostPathVolumeSource  2 emptyDir EmptyDirVolumeSource  6 secret SecretVolumeSource
  7 nfs NFSVolumeSource  10 persistentVolumeClaim PersistentVolumeClaimVolumeSource
  16 downwardAPI DownwardAPIVolumeSource  19 configMap ConfigMapVolumeSource
  26 projected ProjectedVolumeSource  28 csi CSIVolumeSource  30 image ImageVolumeSource""")
define("HostPathVolumeSource", "1 path s!  2 type s!")
define("EmptyDirVolumeSource", "1 medium s  2 sizeLimit q  3 mode i!")
define("SecretVolumeSource", """
  1 secretName s  2 items [KeyToPath]  3 defaultMode i!  4 optional b!  5 defaultUser i!""")
define("ConfigMapVolumeSource", """
  1 localObjectReference ^LocalObjectReference  2 items [KeyToPath]  3 defaultMode i!
  4 optional b!  5 defaultUser i!""")
define("KeyToPath", "1 key s!  2 path s!  3 mode i!  4 user i!")
define("NFSVolumeSource", "1 server s!  2 path s!  3 readOnly b")
define("PersistentVolumeClaimVolumeSource", "1 claimName s!  2 readOnly b")
define("DownwardAPIVolumeSource", """
  1 items [DownwardAPIVolumeFile]  2 defaultMode i!  3 defaultUser i!""")
define("DownwardAPIVolumeFile", """
  1 path s!  2 fieldRef ObjectFieldSelector  3 resourceFieldRef ResourceFieldSelector  4 mode i!
  5 user i!""")
define("ProjectedVolumeSource", "1 sources [VolumeProjection]  2 defaultMode i!  3 defaultUser i!")
define("VolumeProjection", """
  1 secret SecretProjection  2 downwardAPI DownwardAPIProjection  3 configMap ConfigMapProjection
  4 serviceAccountToken ServiceAccountTokenProjection""")
define("SecretProjection", """
  1 localObjectReference ^LocalObjectReference  2 items [KeyToPath]  4 optional b!""")
define("ConfigMapProjection", """
  1 localObjectReference ^LocalObjectReference  2 items [KeyToPath]  4 optional b!""")
define("DownwardAPIProjection", "1 items [DownwardAPIVolumeFile]")
define("ServiceAccountTokenProjection", """
  1 audience s  2 expirationSeconds i!  3 path s!  4 user i!""")
define("CSIVolumeSource", """
  1 driver s!  2 readOnly b!  3 fsType s!  4 volumeAttributes {s}
  5 nodePublishSecretRef LocalObjectReference""")
define("ImageVolumeSource", "1 reference s  2 pullPolicy s")
define("PodStatus", """
  1 phase s  2 conditions [PodCondition]  3 message s  4 reason s  5 hostIP s  6 podIP s
  7 startTime t  8 containerStatuses [ContainerStatus]  9 qosClass s
  10 initContainerStatuses [ContainerStatus]  11 nominatedNodeName s  12 podIPs [PodIP]
  13 ephemeralContainerStatuses [ContainerStatus]  14 resize s  16 hostIPs [HostIP]
  17 observedGeneration i""")
define("PodCondition", """
  1 type s  2 status s  3 lastProbeTime t  4 lastTransitionTime t  5 reason s  6 message s
  7 observedGeneration i""")
define("PodIP", "1 ip s!")
define("HostIP", "1 ip s!")
define("ContainerStatus", """
  1 name s!  2 state ContainerState  3 lastState ContainerState  4 ready b!  5 restartCount i!
  6 image s!  7 imageID s!  8 containerID s  9 started b!  10 allocatedResources {q}
  11 resources ResourceRequirements  15 stopSignal s!""")
define("ContainerState", """
  1 waiting ContainerStateWaiting  2 running ContainerStateRunning
  3 terminated ContainerStateTerminated""")
define("ContainerStateWaiting", "1 reason s  2 message s")
define("ContainerStateRunning", "1 startedAt t")
define("ContainerStateTerminated", """
  1 exitCode i!  2 signal i  3 reason s  4 message s  5 startedAt t  6 finishedAt t
  7 containerID s""")

# ---- apps/v1 ----
define("Deployment", "1 metadata ObjectMeta  2 spec DeploymentSpec  3 status DeploymentStatus")
define("DeploymentSpec", """
  1 replicas i!  2 selector LabelSelector  3 template PodTemplateSpec  4 strategy DeploymentStrategy
  5 minReadySeconds i  6 revisionHistoryLimit i!  7 paused b  9 progressDeadlineSeconds i!""")
define("DeploymentStrategy", "1 type s  2 rollingUpdate RollingUpdateDeployment")
define("RollingUpdateDeployment", "1 maxUnavailable ios  2 maxSurge ios")
define("DeploymentStatus", """
  1 observedGeneration i  2 replicas i  3 updatedReplicas i  4 availableReplicas i
  5 unavailableReplicas i  6 conditions [DeploymentCondition]  7 readyReplicas i
  8 collisionCount i!  9 terminatingReplicas i!""")
define("DeploymentCondition", """
  1 type s  2 status s  4 reason s  5 message s  6 lastUpdateTime t  7 lastTransitionTime t""")
define("ReplicaSet", "1 metadata ObjectMeta  2 spec ReplicaSetSpec  3 status ReplicaSetStatus")
define("ReplicaSetSpec", """
  1 replicas i!  2 selector LabelSelector  3 template PodTemplateSpec  4 minReadySeconds i""")
define("ReplicaSetStatus", """
  1 replicas i!  2 fullyLabeledReplicas i  3 observedGeneration i  4 readyReplicas i
  5 availableReplicas i  6 conditions [ReplicaSetCondition]  7 terminatingReplicas i!""")
define("ReplicaSetCondition", """
  1 type s  2 status s  3 lastTransitionTime t  4 reason s  5 message s""")
define("DaemonSet", "1 metadata ObjectMeta  2 spec DaemonSetSpec  3 status DaemonSetStatus")
define("DaemonSetSpec", """
  1 selector LabelSelector  2 template PodTemplateSpec  3 updateStrategy DaemonSetUpdateStrategy
  4 minReadySeconds i  6 revisionHistoryLimit i!""")
define("DaemonSetUpdateStrategy", "1 type s  2 rollingUpdate RollingUpdateDaemonSet")
define("RollingUpdateDaemonSet", "1 maxUnavailable ios  2 maxSurge ios")
define("DaemonSetStatus", """
  1 currentNumberScheduled i!  2 numberMisscheduled i!  3 desiredNumberScheduled i!
  4 numberReady i!  5 observedGeneration i  6 updatedNumberScheduled i  7 numberAvailable i
  8 numberUnavailable i  9 collisionCount i!  10 conditions [DaemonSetCondition]""")
define("DaemonSetCondition", """
  1 type s  2 status s  3 lastTransitionTime t  4 reason s  5 message s""")
define("ControllerRevision", "1 metadata ObjectMeta  2 data raw  3 revision i!")

# ---- batch/v1 ----
define("Job", "1 metadata ObjectMeta  2 spec JobSpec  3 status JobStatus")
define("JobSpec", """
  1 parallelism i!  2 completions i!  3 activeDeadlineSeconds i!  4 selector LabelSelector
  5 manualSelector b!  6 template PodTemplateSpec  7 backoffLimit i!  8 ttlSecondsAfterFinished i!
  9 completionMode s!  10 suspend b!  11 podFailurePolicy PodFailurePolicy
  12 backoffLimitPerIndex i!  13 maxFailedIndexes i!  14 podReplacementPolicy s!
  15 managedBy s!  16 successPolicy SuccessPolicy""")
define("PodFailurePolicy", "1 rules [PodFailurePolicyRule]")
define("PodFailurePolicyRule", """
  1 action s  2 onExitCodes PodFailurePolicyOnExitCodesRequirement
  3 onPodConditions [PodFailurePolicyOnPodConditionsPattern]""")
define("PodFailurePolicyOnExitCodesRequirement", "1 containerName s!  2 operator s  3 values [i]")
define("PodFailurePolicyOnPodConditionsPattern", "1 type s  2 status s")
define("SuccessPolicy", "1 rules [SuccessPolicyRule]")
define("SuccessPolicyRule", "1 succeededIndexes s!  2 succeededCount i!")
define("JobStatus", """
  1 conditions [JobCondition]  2 startTime t  3 completionTime t  4 active i  5 succeeded i
  6 failed i  7 completedIndexes s  8 uncountedTerminatedPods UncountedTerminatedPods  9 ready i!
  10 failedIndexes s!  11 terminating i!""")
define("JobCondition", """
  1 type s  2 status s  3 lastProbeTime t  4 lastTransitionTime t  5 reason s  6 message s""")
define("UncountedTerminatedPods", "1 succeeded [s]  2 failed [s]")

# ---- rbac.authorization.k8s.io/v1 ----
define("ClusterRole", """
  1 metadata ObjectMeta  2 rules [PolicyRule]  3 aggregationRule AggregationRule""")
define("Role", "1 metadata ObjectMeta  2 rules [PolicyRule]")
define("PolicyRule", """
  1 verbs [s]  2 apiGroups [s]  3 resources [s]  4 resourceNames [s]  5 nonResourceURLs [s]""")
define("AggregationRule", "1 clusterRoleSelectors [LabelSelector]")
define("ClusterRoleBinding", "1 metadata ObjectMeta  2 subjects [Subject]  3 roleRef RoleRef")
define("RoleBinding", "1 metadata ObjectMeta  2 subjects [Subject]  3 roleRef RoleRef")
define("Subject", "1 kind s!  2 apiGroup s  3 name s!  4 namespace s")
define("RoleRef", "1 apiGroup s!  2 kind s!  3 name s!")

# ---- certificates, coordination, discovery ----
define("CertificateSigningRequest", """
  1 metadata ObjectMeta  2 spec CertificateSigningRequestSpec
  3 status CertificateSigningRequestStatus""")
define("CertificateSigningRequestSpec", """
  1 request y  2 username s  3 uid s  4 groups [s]  5 usages [s]  6 extra {xv}  7 signerName s!
  8 expirationSeconds i!""")
define("CertificateSigningRequestStatus", """
  1 conditions [CertificateSigningRequestCondition]  2 certificate y""")
define("CertificateSigningRequestCondition", """
  1 type s  2 reason s  3 message s  4 lastUpdateTime t  5 lastTransitionTime t  6 status s""")
define("Lease", "1 metadata ObjectMeta  2 spec LeaseSpec")
define("LeaseSpec", """
  1 holderIdentity s!  2 leaseDurationSeconds i!  3 acquireTime mt  4 renewTime mt
  5 leaseTransitions i!  6 strategy s!  7 preferredHolder s!""")
define("EndpointSlice", """
  1 metadata ObjectMeta  2 endpoints [discovery.Endpoint]  3 ports [discovery.EndpointPort]
  4 addressType s""")
define("discovery.Endpoint", """
  1 addresses [s]  2 conditions discovery.EndpointConditions  3 hostname s!
  4 targetRef ObjectReference  5 deprecatedTopology {s}  6 nodeName s!  7 zone s!
  8 hints discovery.EndpointHints""")
define("discovery.EndpointConditions", "1 ready b!  2 serving b!  3 terminating b!")
define("discovery.EndpointHints", "1 forZones [discovery.ForZone]  2 forNodes [discovery.ForNode]")
define("discovery.ForZone", "1 name s!")
define("discovery.ForNode", "1 name s!")
define("discovery.EndpointPort", "1 name s!  2 protocol s!  3 port i!  4 appProtocol s!")

# ---- subresources and reviews: policy, autoscaling, authentication, authorization ----
define("Eviction", "1 metadata ObjectMeta  2 deleteOptions DeleteOptions")
define("Scale", "1 metadata ObjectMeta  2 spec ScaleSpec  3 status ScaleStatus")
define("ScaleSpec", "1 replicas i")
define("ScaleStatus", "1 replicas i!  2 selector s")
define("TokenRequest", """
  1 metadata ObjectMeta  2 spec TokenRequestSpec  3 status TokenRequestStatus""")
define("TokenRequestSpec", """
  1 audiences [s]  3 boundObjectRef BoundObjectReference  4 expirationSeconds i!""")
define("BoundObjectReference", "1 kind s  2 apiVersion s  3 name s  4 uid s")
define("TokenRequestStatus", "1 token s!  2 expirationTimestamp t")
define("TokenReview", "1 metadata ObjectMeta  2 spec TokenReviewSpec  3 status TokenReviewStatus")
define("TokenReviewSpec", "1 token s  2 audiences [s]")
define("TokenReviewStatus", """
  1 authenticated b  2 user UserInfo  3 error s  4 audiences [s]""")
define("UserInfo", "1 username s  2 uid s  3 groups [s]  4 extra {xv}")
define("SelfSubjectReview", "1 metadata ObjectMeta  2 status SelfSubjectReviewStatus")
define("SelfSubjectReviewStatus", "1 userInfo UserInfo")
define("SubjectAccessReview", """
  1 metadata ObjectMeta  2 spec SubjectAccessReviewSpec  3 status SubjectAccessReviewStatus""")
define("SubjectAccessReviewSpec", """
  1 resourceAttributes ResourceAttributes  2 nonResourceAttributes NonResourceAttributes
  3 user s  4 groups [s]  5 extra {xv}  6 uid s""")
define("SelfSubjectAccessReview", """
  1 metadata ObjectMeta  2 spec SelfSubjectAccessReviewSpec  3 status SubjectAccessReviewStatus""")
define("SelfSubjectAccessReviewSpec", """
  1 resourceAttributes ResourceAttributes  2 nonResourceAttributes NonResourceAttributes""")
define("ResourceAttributes", """
  1 namespace s  2 verb s  3 group s  4 version s  5 resource s  6 subresource s  7 name s
  8 fieldSelector FieldSelectorAttributes  9 labelSelector LabelSelectorAttributes""")
define("FieldSelectorAttributes", "1 rawSelector s  2 requirements [FieldSelectorRequirement]")
define("FieldSelectorRequirement", "1 key s!  2 operator s  3 values [s]")
define("LabelSelectorAttributes", "1 rawSelector s  2 requirements [LabelSelectorRequirement]")
define("NonResourceAttributes", "1 path s  2 verb s")
define("SubjectAccessReviewStatus", "1 allowed b!  2 reason s  3 evaluationError s  4 denied b")
define("SelfSubjectRulesReview", """
  1 metadata ObjectMeta  2 spec SelfSubjectRulesReviewSpec  3 status SubjectRulesReviewStatus""")
define("SelfSubjectRulesReviewSpec", "1 namespace s")
define("SubjectRulesReviewStatus", """
  1 resourceRules [ResourceRule]  2 nonResourceRules [NonResourceRule]  3 incomplete b!
  4 evaluationError s""")
define("ResourceRule", "1 verbs [s]  2 apiGroups [s]  3 resources [s]  4 resourceNames [s]")
define("NonResourceRule", "1 verbs [s]  2 nonResourceURLs [s]")

_resolve()

# (apiVersion, kind) -> message. DeleteOptions travels under whatever version the client uses.
KIND_MESSAGES: dict[tuple[str, str], str] = {
    **{("v1", k): k for k in (
        "Namespace", "Node", "Pod", "Service", "ServiceAccount", "Secret", "ConfigMap",
        "Endpoints", "Event", "Binding", "Status")},
    **{("apps/v1", k): k for k in (
        "Deployment", "ReplicaSet", "DaemonSet", "ControllerRevision")},
    ("batch/v1", "Job"): "Job",
    **{("rbac.authorization.k8s.io/v1", k): k for k in (
        "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")},
    ("certificates.k8s.io/v1", "CertificateSigningRequest"): "CertificateSigningRequest",
    ("coordination.k8s.io/v1", "Lease"): "Lease",
    ("discovery.k8s.io/v1", "EndpointSlice"): "EndpointSlice",
    ("policy/v1", "Eviction"): "Eviction",
    ("autoscaling/v1", "Scale"): "Scale",
    **{("authentication.k8s.io/v1", k): k for k in (
        "TokenRequest", "TokenReview", "SelfSubjectReview")},
    **{("authorization.k8s.io/v1", k): k for k in (
        "SubjectAccessReview", "SelfSubjectAccessReview", "SelfSubjectRulesReview")},
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview"): "SubjectAccessReview",
    **{(v, "DeleteOptions"): "DeleteOptions" for v in (
        "meta.k8s.io/v1", "v1", "apps/v1", "batch/v1", "policy/v1", "rbac.authorization.k8s.io/v1",
        "certificates.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1")},
}
