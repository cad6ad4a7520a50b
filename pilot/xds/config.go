package xds

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
)

// DefaultAddr is pilot's xDS port (DESIGN.md).
const DefaultAddr = ":15010"

// Config configures a Server. Logging comes from the context given to Run.
type Config struct {
	// Addr is the listen address; empty means DefaultAddr. Ignored when
	// Listener is set.
	Addr string
	// Listener, if set, is used instead of listening on Addr (tests).
	Listener net.Listener
	// TLS is the server's TLS config. It must require and verify client
	// certificates against the mesh roots (see ServerTLSConfig). Nil serves
	// plaintext, which is only allowed together with a non-TLS
	// Authenticator, for tests.
	TLS *tls.Config
	// Authenticator extracts the peer's SPIFFE ID; nil means
	// TLSAuthenticator, which needs TLS.
	Authenticator Authenticator
	// Model is the cluster state config is generated from.
	Model *model.Store
	// Generator holds mesh-wide generation settings (trust domain, ...).
	Generator generator.Options
	// Debounce is the quiet period after a model change before a push;
	// zero means 100ms. MaxDebounce bounds how long a stream of changes can
	// delay a push; zero means 1s. (Istio's PILOT_DEBOUNCE_AFTER/MAX.)
	Debounce, MaxDebounce time.Duration
	// PodWait is how long a connecting proxy's pod may be missing from the
	// model (the informer can lag a fast sidecar) before the stream is
	// refused; zero means 10s.
	PodWait time.Duration
	// Workers bounds concurrent snapshot generation; zero means GOMAXPROCS.
	Workers int
	// FullConsistencyCheck also runs Snapshot.Consistent on every merged
	// per-proxy snapshot before setting it. Off, consistency is checked per
	// part (the shared outbound part once per generation, each proxy's
	// own part per push; see buildSnapshot), which is equivalent and avoids
	// re-parsing every listener of every proxy on each push (BenchmarkPush
	// .../fullcheck=true: 6–15× the push time at 100–1000 proxies and
	// Services). Tests turn it on to keep that argument honest.
	FullConsistencyCheck bool
	// MeterProvider receives the xDS metrics (telemetry.go); nil records
	// none.
	MeterProvider metric.MeterProvider
	// TracerProvider receives the network-programming spans (one
	// "pilot.push" per EndpointSlice change and affected proxy, see
	// pilot/telemetry/netprog); nil records none.
	TracerProvider trace.TracerProvider
}

func (c *Config) validate() error {
	if c.Model == nil {
		return errors.New("xds config: no model")
	}
	if c.TLS == nil && c.Authenticator == nil {
		return errors.New("xds config: no TLS config and no authenticator: refusing to serve unauthenticated xDS")
	}
	if c.TLS == nil {
		if _, ok := c.Authenticator.(TLSAuthenticator); ok {
			return errors.New("xds config: TLSAuthenticator needs a TLS config")
		}
	}
	if c.TLS != nil && c.TLS.ClientAuth != tls.RequireAndVerifyClientCert {
		return fmt.Errorf("xds config: TLS must require and verify client certificates (ClientAuth=%v)", c.TLS.ClientAuth)
	}
	c.Generator.TrustDomain = cmp.Or(c.Generator.TrustDomain, generator.DefaultTrustDomain)
	if _, err := spiffeid.TrustDomainFromString(c.Generator.TrustDomain); err != nil {
		return fmt.Errorf("xds config: trust domain: %w", err)
	}
	c.Addr = cmp.Or(c.Addr, DefaultAddr)
	c.Debounce = cmp.Or(c.Debounce, 100*time.Millisecond)
	c.MaxDebounce = cmp.Or(c.MaxDebounce, time.Second)
	c.PodWait = cmp.Or(c.PodWait, 10*time.Second)
	if c.Authenticator == nil {
		c.Authenticator = TLSAuthenticator{}
	}
	return nil
}
