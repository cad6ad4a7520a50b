package injector

import (
	"strconv"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/pilot/telemetry"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Injected volumes and where they are mounted. weft-agent's flags point at
// these paths, so they are part of the agent's contract.
const (
	VolumeToken          = "weft-token"           // projected ServiceAccount token (audience weft-ca) for the CA
	VolumeProxySocket    = "weft-proxy-socket"    // SDS socket between the agent and Envoy (memory-backed)
	VolumeWorkloadSocket = "weft-workload-socket" // SPIFFE Workload API socket, shared with apps
	VolumeRootCert       = "weft-root-cert"       // trust bundle (ConfigMap published by pilot)
	VolumeEnvoy          = "weft-envoy"           // Envoy bootstrap written by the agent (root FS is read-only)

	TokenDir          = "/var/run/secrets/tokens" // mount of VolumeToken
	ProxySocketDir    = "/var/run/weft/proxy"     // mount of VolumeProxySocket
	WorkloadSocketDir = "/var/run/weft/workload"  // mount of VolumeWorkloadSocket (read-only in apps)
	RootCertDir       = "/var/run/weft/root-cert" // mount of VolumeRootCert
	EnvoyDir          = "/etc/weft/envoy"         // mount of VolumeEnvoy

	// WorkloadSocket is the SPIFFE Workload API socket served by the agent.
	WorkloadSocket = WorkloadSocketDir + "/socket"
)

// The agent's downward-API variables that podResourceAttributes refers to
// (agent.EnvPodName, ...; the injector does not import the agent).
const (
	agentEnvPodName      = "POD_NAME"
	agentEnvPodNamespace = "POD_NAMESPACE"
	agentEnvNodeName     = "NODE_NAME"
)

// tokenExpirationSeconds is the projected token's lifetime; the kubelet
// refreshes it at 80%.
const tokenExpirationSeconds = 3600

// healthPath is weft-agent's readiness endpoint on annotation.HealthPort.
const healthPath = "/healthz/ready"

// sidecarContainer builds weft-sidecar. It runs first among the init
// containers with restartPolicy Always (a native sidecar): the kubelet
// starts the next container only once its startup probe passes, so the app
// never starts before the proxy, and Jobs complete because sidecars do not
// keep a finished pod alive.
func sidecarContainer(cfg Config, res corev1.ResourceRequirements, probers annotation.AppProbers) corev1.Container {
	env := []corev1.EnvVar{
		fieldEnv(agentEnvPodName, "metadata.name"),
		fieldEnv(agentEnvPodNamespace, "metadata.namespace"),
		fieldEnv("POD_IP", "status.podIP"),
		fieldEnv(agentEnvNodeName, "spec.nodeName"),
		fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
	}
	if len(probers) > 0 {
		env = append(env, corev1.EnvVar{Name: annotation.AppProbersEnv, Value: probers.String()})
	}
	env = append(env, telemetryEnv(cfg)...)
	health := corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: healthPath, Port: intstr.FromInt32(annotation.HealthPort), Scheme: corev1.URISchemeHTTP,
	}}
	return corev1.Container{
		Name:            SidecarContainer,
		Image:           cfg.Image,
		ImagePullPolicy: cfg.ImagePullPolicy,
		Args: []string{
			"--sds-socket=" + ProxySocketDir + "/sds.sock",
			"--workload-socket=" + WorkloadSocket,
			"--token-file=" + TokenDir + "/" + VolumeToken,
			"--ca-root-file=" + RootCertDir + "/root-cert.pem",
			"--ca-address=" + cfg.CAAddress,
			"--xds-address=" + cfg.XDSAddress,
			"--trust-domain=" + cfg.TrustDomain,
		},
		Env: env,
		Ports: []corev1.ContainerPort{
			{Name: "http-envoy-prom", ContainerPort: annotation.EnvoyPrometheusPort, Protocol: corev1.ProtocolTCP},
			{Name: "health", ContainerPort: annotation.HealthPort, Protocol: corev1.ProtocolTCP},
			{Name: "agent-metrics", ContainerPort: annotation.AgentPort, Protocol: corev1.ProtocolTCP},
		},
		Resources:     res,
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		// Startup: poll every second for up to 10 minutes (first
		// certificate, first xDS push); the app waits on it.
		StartupProbe:   &corev1.Probe{ProbeHandler: health, TimeoutSeconds: 3, PeriodSeconds: 1, FailureThreshold: 600},
		ReadinessProbe: &corev1.Probe{ProbeHandler: health, TimeoutSeconds: 3, PeriodSeconds: 15, FailureThreshold: 4},
		VolumeMounts: []corev1.VolumeMount{
			{Name: VolumeToken, MountPath: TokenDir, ReadOnly: true},
			{Name: VolumeProxySocket, MountPath: ProxySocketDir},
			{Name: VolumeWorkloadSocket, MountPath: WorkloadSocketDir},
			{Name: VolumeRootCert, MountPath: RootCertDir, ReadOnly: true},
			{Name: VolumeEnvoy, MountPath: EnvoyDir},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](annotation.ProxyUID),
			RunAsGroup:               ptr.To[int64](annotation.ProxyGID),
			RunAsNonRoot:             ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Privileged:               ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
}

// OpenTelemetry SDK variables
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/)
// the injector sets on the sidecar; weft-agent reads them through
// telemetry.Setup.
const (
	EnvOTLPEndpoint         = telemetry.EnvOTLPEndpoint
	EnvResourceAttributes   = "OTEL_RESOURCE_ATTRIBUTES"
	EnvMetricExportInterval = "OTEL_METRIC_EXPORT_INTERVAL"
)

// podResourceAttributes names the pod on the agent's metrics and spans.
// The kubelet expands $(VAR) from the variables defined before it (the
// downward-API ones above), so the injector needs no pod name, which
// controllers' pods do not have yet at admission.
const podResourceAttributes = "k8s.pod.name=$(" + agentEnvPodName + "),k8s.namespace.name=$(" +
	agentEnvPodNamespace + "),k8s.node.name=$(" + agentEnvNodeName + ")"

// telemetryEnv points the agent at the collector; nothing without one.
// Only the sidecar gets these: an app container's own OTEL_* variables
// (its own collector, its own resource) are never touched.
func telemetryEnv(cfg Config) []corev1.EnvVar {
	if cfg.OTLPEndpoint == "" {
		return nil
	}
	env := []corev1.EnvVar{
		{Name: EnvOTLPEndpoint, Value: cfg.OTLPEndpoint},
		{Name: EnvResourceAttributes, Value: podResourceAttributes},
	}
	if cfg.MetricExportInterval > 0 {
		env = append(env, corev1.EnvVar{Name: EnvMetricExportInterval, Value: strconv.FormatInt(cfg.MetricExportInterval.Milliseconds(), 10)})
	}
	return env
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path},
	}}
}

// sidecarVolumes are the pod volumes the sidecar and apps mount.
func sidecarVolumes() []corev1.Volume {
	return []corev1.Volume{
		{Name: VolumeToken, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: TokenAudience, ExpirationSeconds: ptr.To[int64](tokenExpirationSeconds), Path: VolumeToken,
			}}},
		}}},
		{Name: VolumeProxySocket, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		{Name: VolumeWorkloadSocket, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: VolumeRootCert, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: RootCertConfigMap}, Optional: ptr.To(false),
		}}},
		{Name: VolumeEnvoy, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
}

// addWorkloadAPI gives an app container the SPIFFE Workload API socket
// (read-only: apps connect, they never create files there) and the
// variable SPIFFE libraries look for. A variable the app already sets wins.
func addWorkloadAPI(c *corev1.Container) {
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: VolumeWorkloadSocket, MountPath: WorkloadSocketDir, ReadOnly: true})
	for _, e := range c.Env {
		if e.Name == SPIFFEEndpointSocketEnv {
			return
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: SPIFFEEndpointSocketEnv, Value: "unix://" + WorkloadSocket})
}
