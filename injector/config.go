// Package injector is Weft's sidecar injector: a mutating admission webhook
// (https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/)
// that adds weft-sidecar (weft-agent + Envoy) to pods as a native sidecar
// (https://kubernetes.io/docs/concepts/workloads/pods/sidecar-containers/).
//
// The core is Mutate, a pure function from (pod, namespace, Config) to the
// mutated pod and the decision behind it; the admission Handler only decodes,
// calls Mutate and answers with a JSON patch. CertSync keeps the webhook's
// own serving certificate and the caBundle of the MutatingWebhookConfiguration
// valid, so the injector needs no cert-manager.
package injector

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/weftmesh/weft/api/annotation"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Names fixed by the design: other components and the e2e suite find the
// injected parts by them.
const (
	// SidecarContainer is the injected init container. Not "weft-proxy":
	// that is the Service proxy DaemonSet.
	SidecarContainer = "weft-sidecar"
	// DefaultImage is the sidecar image (agent + Envoy; entrypoint weft-agent).
	DefaultImage = "weft.local/sidecar:dev"
	// DefaultTrustDomain is the SPIFFE trust domain when none is configured.
	DefaultTrustDomain = "cluster.local"
	// TokenAudience is the audience of the projected ServiceAccount token
	// that pilot's CA checks with a TokenReview.
	TokenAudience = "weft-ca"
	// RootCertConfigMap is published into every meshed namespace by pilot.
	RootCertConfigMap = "weft-root-cert"
	// SPIFFEEndpointSocketEnv is the SPIFFE Workload API's well-known
	// variable (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Workload_Endpoint.md).
	SPIFFEEndpointSocketEnv = "SPIFFE_ENDPOINT_SOCKET"
)

// ProxyResources are the sidecar's default requests and limits; pods
// override each with the proxy.weft.dev/* annotations. A zero quantity means
// "not set" (limits are unset by default so the proxy is never throttled or
// OOM-killed by a guess).
type ProxyResources struct {
	CPU, Memory           resource.Quantity // requests (proxy.weft.dev/cpu, /memory)
	CPULimit, MemoryLimit resource.Quantity // limits (proxy.weft.dev/cpu-limit, /memory-limit)
}

// ParseProxyResources turns the flag strings into ProxyResources; empty
// strings leave the value unset.
func ParseProxyResources(cpu, memory, cpuLimit, memoryLimit string) (ProxyResources, error) {
	var r ProxyResources
	for _, f := range []struct {
		name, val string
		dst       *resource.Quantity
	}{{"cpu", cpu, &r.CPU}, {"memory", memory, &r.Memory}, {"cpu limit", cpuLimit, &r.CPULimit}, {"memory limit", memoryLimit, &r.MemoryLimit}} {
		if f.val == "" {
			continue
		}
		q, err := resource.ParseQuantity(f.val)
		if err != nil {
			return ProxyResources{}, fmt.Errorf("proxy %s %q: %w", f.name, f.val, err)
		}
		*f.dst = q
	}
	return r, nil
}

// Config is everything Mutate needs besides the pod and its namespace. It is
// plain data so golden tests and `meshctl` can inject without a cluster.
type Config struct {
	// Image of the sidecar, and its pull policy (empty: Kubernetes default).
	Image           string
	ImagePullPolicy corev1.PullPolicy
	// TrustDomain of the SPIFFE IDs the agent requests.
	TrustDomain string
	// Revision this injector serves (annotation.DefaultRevision unless a
	// canary control plane runs beside the default one).
	Revision string
	// CAAddress and XDSAddress are pilot's CA and xDS endpoints.
	CAAddress, XDSAddress string
	// Resources are the sidecar's default requests and limits.
	Resources ProxyResources
	// OTLPEndpoint is the OpenTelemetry collector (OTLP/gRPC URL,
	// http://host:4317 for plaintext) the sidecar's agent exports its
	// metrics and spans to; empty: the sidecar gets no OTEL_* variables and
	// exports nothing over OTLP (Prometheus on :15020 stays).
	OTLPEndpoint string
	// MetricExportInterval is the agent's OTLP metric push period
	// (OTEL_METRIC_EXPORT_INTERVAL) when OTLPEndpoint is set; zero leaves
	// the SDK's 60 s.
	MetricExportInterval time.Duration
}

// DefaultMetricExportInterval is the sidecar agents' OTLP metric push
// period. There is one agent per pod and its few instruments change rarely
// (SVID fetches every ~12 h, Envoy restarts), so it is five times the SDK's
// 60 s: a thousand pods push ~3 times a second instead of ~17. /metrics on
// :15020 is as fresh as ever for Prometheus.
const DefaultMetricExportInterval = 5 * time.Minute

// DefaultConfig is the configuration of a stock install in weft-system.
func DefaultConfig() Config {
	return Config{
		MetricExportInterval: DefaultMetricExportInterval,
		Image:                DefaultImage,
		TrustDomain:          DefaultTrustDomain,
		Revision:             annotation.DefaultRevision,
		CAAddress:            "weft-pilot.weft-system.svc:15012",
		XDSAddress:           "weft-pilot.weft-system.svc:15010",
		Resources: ProxyResources{
			CPU:    resource.MustParse("10m"),
			Memory: resource.MustParse("40Mi"),
		},
	}
}

// Validate rejects a configuration that would inject broken pods, so the
// injector fails at start-up instead of on the first pod.
func (c Config) Validate() error {
	if c.Image == "" || c.TrustDomain == "" || c.Revision == "" || c.CAAddress == "" || c.XDSAddress == "" {
		return errors.New("image, trust domain, revision, CA and xDS addresses must be set")
	}
	switch c.ImagePullPolicy {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return fmt.Errorf("unknown image pull policy %q", c.ImagePullPolicy)
	}
	if _, err := resolveResources(nil, c.Resources); err != nil {
		return fmt.Errorf("default proxy resources: %w", err)
	}
	if err := validateOTLPEndpoint(c.OTLPEndpoint); err != nil {
		return err
	}
	if c.MetricExportInterval < 0 {
		return fmt.Errorf("metric export interval %v is negative", c.MetricExportInterval)
	}
	return nil
}

// validateOTLPEndpoint accepts what the agent's OTLP/gRPC exporters take
// from OTEL_EXPORTER_OTLP_ENDPOINT: an http or https URL with a host.
func validateOTLPEndpoint(endpoint string) error {
	if endpoint == "" {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("sidecar OTLP endpoint: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("sidecar OTLP endpoint %q: want http://host:port or https://host:port", endpoint)
	}
	return nil
}
