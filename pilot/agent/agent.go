package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/weftmesh/weft/pilot/telemetry"
)

// Agent obtains and rotates the pod's SVID and serves it over SDS and the
// Workload API. Sidecar builds the rest of weft-agent on it: Envoy is
// started once Ready is closed, and readiness requires it.
type Agent struct {
	cfg       Config
	store     *svidStore
	metrics   *metrics
	tracer    trace.Tracer
	listening chan struct{}
}

// New validates cfg and fills defaults.
func New(cfg Config) (*Agent, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	store := newSVIDStore()
	m, err := newMetrics(cfg.MeterProvider, store)
	if err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, store: store, metrics: m, tracer: cfg.TracerProvider.Tracer(TracerName), listening: make(chan struct{})}, nil
}

// Listening is closed once both sockets accept connections.
func (a *Agent) Listening() <-chan struct{} { return a.listening }

// Ready is closed once the first SVID is served over SDS.
func (a *Agent) Ready() <-chan struct{} { return a.store.ready }

// Current is the SVID being served, nil before Ready.
func (a *Agent) Current() *SVID {
	s, _ := a.store.get()
	return s
}

// Run serves the sockets first (Envoy may connect before the SVID exists;
// SDS answers as soon as it does), then fetches and rotates the SVID until
// ctx is done. Nothing is persisted: a restarted agent fetches a new SVID.
// Run may be called once per Agent.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Envoy runs as the agent's UID/GID (1337); applications in the pod may
	// run as any user and are meant to reach the Workload API.
	sdsLis, err := listenUnix(a.cfg.SDSSocket, 0o660)
	if err != nil {
		return err
	}
	wlLis, err := listenUnix(a.cfg.WorkloadSocket, 0o666)
	if err != nil {
		return errors.Join(err, sdsLis.Close())
	}
	close(a.listening)
	sds, sdsServer := newSDS(ctx)
	wlServer := newWorkloadServer(a.store)
	errc := make(chan error, 3)
	go func() { errc <- serveUntil(sdsServer, sdsLis, "sds") }()
	go func() { errc <- serveUntil(wlServer, wlLis, "workload api") }()
	go func() { errc <- a.rotate(ctx, sds) }()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	// Envoy and applications hold streams open forever: stop, don't drain.
	sdsServer.Stop()
	wlServer.Stop()
	return runErr
}

// rotate obtains the first SVID as part of the start trace, then renews
// it at renewAt, each renewal a trace of its own (SpanRotate, linked to the
// start). It returns nil when ctx ends and an error only if SDS fails.
func (a *Agent) rotate(ctx context.Context, sds *sds) error {
	log := logr.FromContextOrDiscard(ctx).WithName("agent")
	startCtx, endStart := startSpan(ctx, a.tracer)
	svid, err := a.obtain(startCtx, sds)
	endStart(stoppedIfNil(svid, err))
	start := trace.LinkFromContext(startCtx)
	for svid != nil {
		// Never renew in a tight loop, even if the CA capped the lifetime to
		// almost nothing (its own certificate about to expire).
		next := renewAt(svid, a.cfg.RenewFraction, a.cfg.Jitter, a.cfg.Rand)
		log.Info("SVID ready", "id", svid.ID.String(), "serial", svid.Leaf().SerialNumber.Text(16),
			"notAfter", svid.Leaf().NotAfter, "renewAt", next, "roots", len(svid.Bundle))
		if !sleep(ctx, max(next.Sub(a.cfg.Clock()), a.cfg.MinBackoff)) {
			return nil
		}
		rctx, span := a.tracer.Start(ctx, SpanRotate, trace.WithNewRoot(), trace.WithLinks(start))
		svid, err = a.obtain(rctx, sds)
		telemetry.EndSpan(span, stoppedIfNil(svid, err))
	}
	return err
}

// obtain fetches an SVID, retrying failures with exponential backoff and
// jitter, and publishes it. It returns nil, nil when ctx ends first.
func (a *Agent) obtain(ctx context.Context, sds *sds) (*SVID, error) {
	log := logr.FromContextOrDiscard(ctx).WithName("agent")
	for attempt := 1; ; attempt++ {
		svid, err := a.fetch(ctx, attempt)
		a.metrics.fetched(ctx, err)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil
			}
			wait := backoff(attempt-1, a.cfg.MinBackoff, a.cfg.MaxBackoff, a.cfg.Rand)
			log.Error(err, "fetch SVID", "attempt", attempt, "retryIn", wait.String())
			if !sleep(ctx, wait) {
				return nil, nil
			}
			continue
		}
		if err := a.publish(ctx, sds, svid); err != nil {
			return nil, err
		}
		return svid, nil
	}
}

// fetch is one CSR round trip to the CA (SpanSVIDFetch).
func (a *Agent) fetch(ctx context.Context, attempt int) (*SVID, error) {
	ctx, span := a.tracer.Start(ctx, SpanSVIDFetch, trace.WithAttributes(AttrAttempt.Int(attempt)))
	cur, _ := a.store.get()
	svid, err := fetchSVID(ctx, &a.cfg, bundleOf(cur))
	if err == nil && span.IsRecording() {
		span.SetAttributes(svidAttrs(svid)...)
	}
	telemetry.EndSpan(span, err)
	return svid, err
}

// publish serves svid over SDS and the Workload API (SpanSDSUpdate).
func (a *Agent) publish(ctx context.Context, sds *sds, svid *SVID) error {
	ctx, span := a.tracer.Start(ctx, SpanSDSUpdate)
	if span.IsRecording() {
		span.SetAttributes(svidAttrs(svid)...)
	}
	err := sds.update(ctx, svid)
	if err == nil {
		a.store.set(svid)
	}
	telemetry.EndSpan(span, err)
	return err
}

func bundleOf(s *SVID) []*x509.Certificate {
	if s == nil {
		return nil
	}
	return s.Bundle
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// listenUnix replaces a stale socket left by a previous agent and sets its
// permissions.
func listenUnix(path string, mode os.FileMode) (net.Listener, error) {
	// The directories are emptyDirs in a pod; tests and local runs may
	// need them created.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket dir for %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		return nil, errors.Join(fmt.Errorf("chmod %s: %w", path, err), lis.Close())
	}
	return lis, nil
}

func serveUntil(g *grpc.Server, lis net.Listener, what string) error {
	if err := g.Serve(lis); err != nil {
		return fmt.Errorf("serve %s: %w", what, err)
	}
	return nil
}
