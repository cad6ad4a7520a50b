// Package agent is the core of weft-agent, the per-pod sidecar agent: it
// generates the workload's private key in memory, obtains a SPIFFE
// X.509-SVID (https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md)
// from pilot's CA, renews it at about half of its lifetime, and serves it
//
//   - to Envoy over Envoy's Secret Discovery Service
//     (https://www.envoyproxy.io/docs/envoy/latest/configuration/security/secret)
//     on the Unix socket /var/run/weft/proxy/sds.sock, as the secrets
//     "default" (certificate chain and key) and "ROOTCA" (trust bundle);
//   - to applications over the SPIFFE Workload API
//     (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Workload_API.md)
//     on /var/run/weft/workload/socket.
//
// The key never leaves the pod: it is not written to disk and is only sent
// over these two local sockets.
//
// The package also runs the rest of the sidecar (see Sidecar): it writes
// Envoy's bootstrap (bootstrap.go), supervises the Envoy process
// (envoy.go), and serves readiness, the kubelet's rewritten app probes and
// metrics on :15020 (status.go).
package agent

import (
	"fmt"
	"net"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// Fixed names: Envoy's bootstrap points its SDS cluster at the SDS socket
// and references the two secrets by these names. The paths are where the
// injector mounts the volumes (injector/sidecar.go).
const (
	DefaultCAAddress      = "weft-pilot.weft-system.svc:15012"
	DefaultCARootFile     = "/var/run/weft/root-cert/root-cert.pem"
	DefaultTokenFile      = "/var/run/secrets/tokens/weft-token"
	DefaultSDSSocket      = "/var/run/weft/proxy/sds.sock"
	DefaultWorkloadSocket = "/var/run/weft/workload/socket"
	SecretDefault         = "default"
	SecretRootCA          = "ROOTCA"
)

// Config configures an Agent. Zero values get the defaults above.
type Config struct {
	// CAAddress is pilot's CA endpoint; CAServerName the name its
	// certificate is verified for (host part of CAAddress if empty).
	CAAddress, CAServerName string
	// CARootFile holds the trust bundle (weft-root-cert ConfigMap mount) used
	// to verify pilot before the agent has received a bundle of its own.
	CARootFile string
	// TokenFile is the projected ServiceAccount token (audience weft-ca),
	// re-read for every request because the kubelet rotates it.
	TokenFile string
	// SDSSocket is the Unix socket Envoy's SDS cluster connects to (a
	// memory-backed emptyDir shared with nobody but Envoy).
	SDSSocket string
	// WorkloadSocket is the SPIFFE Workload API socket, in an emptyDir the
	// app containers mount read-only.
	WorkloadSocket string
	// TrustDomain the agent expects its SVID in.
	TrustDomain spiffeid.TrustDomain
	// CertTTL is the lifetime requested for the SVID (the CA may cap it).
	CertTTL time.Duration
	// RenewFraction of the lifetime after which the SVID is renewed (0.5)
	// and Jitter, the ± fraction applied to it (0.1), so pods started
	// together do not renew together.
	RenewFraction, Jitter float64
	// MinBackoff and MaxBackoff bound retries after a failed renewal.
	MinBackoff, MaxBackoff time.Duration
	// Clock and Rand (uniform in [0,1)) are injectable for tests.
	Clock func() time.Time
	Rand  func() float64
	// MeterProvider defaults to the global one.
	MeterProvider metric.MeterProvider
	// TracerProvider creates the SVID spans (tracing.go); it defaults to
	// the global one, which is a no-op unless telemetry.Setup installed an
	// OTLP exporter.
	TracerProvider trace.TracerProvider
	// DialOptions are appended to the CA connection's options.
	DialOptions []grpc.DialOption
}

func (c *Config) setDefaults() error {
	if c.CAAddress == "" {
		c.CAAddress = DefaultCAAddress
	}
	if c.CAServerName == "" {
		host, _, err := net.SplitHostPort(c.CAAddress)
		if err != nil {
			return fmt.Errorf("CA address %q: %w", c.CAAddress, err)
		}
		c.CAServerName = host
	}
	if c.CARootFile == "" {
		c.CARootFile = DefaultCARootFile
	}
	if c.TokenFile == "" {
		c.TokenFile = DefaultTokenFile
	}
	if c.SDSSocket == "" {
		c.SDSSocket = DefaultSDSSocket
	}
	if c.WorkloadSocket == "" {
		c.WorkloadSocket = DefaultWorkloadSocket
	}
	if c.TrustDomain.IsZero() {
		c.TrustDomain = spiffeid.RequireTrustDomainFromString("cluster.local")
	}
	if c.CertTTL <= 0 {
		c.CertTTL = 24 * time.Hour
	}
	if c.RenewFraction <= 0 || c.RenewFraction >= 1 {
		c.RenewFraction = 0.5
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		return fmt.Errorf("jitter %v outside [0,1)", c.Jitter)
	}
	if c.Jitter == 0 {
		c.Jitter = 0.1
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(30*time.Second, c.MinBackoff)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Rand == nil {
		c.Rand = randFloat
	}
	if c.MeterProvider == nil {
		c.MeterProvider = otel.GetMeterProvider()
	}
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	return nil
}
