package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/weftmesh/weft/api/annotation"
)

// AppHealthPrefix is the path prefix of the rewritten app probes
// (annotation.AppProbePath).
const AppHealthPrefix = "/app-health/"

// proxyState is what readiness needs from the Envoy supervisor.
type proxyState interface {
	Draining() bool
	Running() bool
	EnvoyState(ctx context.Context) (string, error)
}

// statusHandler serves the agent's HTTP port (AgentPort): readiness for
// Envoy's readiness listener, the kubelet's rewritten app probes, and
// metrics.
type statusHandler struct {
	svidReady <-chan struct{}
	proxy     proxyState
	probes    *appProber
	metrics   http.Handler
}

func newStatusHandler(svidReady <-chan struct{}, proxy proxyState, probers annotation.AppProbers, metrics http.Handler) http.Handler {
	h := &statusHandler{svidReady: svidReady, proxy: proxy, probes: newAppProber(probers), metrics: metrics}
	mux := http.NewServeMux()
	mux.HandleFunc(ReadinessPath, h.serveReady)
	mux.Handle(AppHealthPrefix, h.probes)
	if metrics != nil {
		mux.Handle("/metrics", metrics)
	}
	return mux
}

// serveReady answers 200 when the proxy can carry mesh traffic: the SVID
// is served and Envoy reports LIVE, which with the bootstrap's unbounded
// initial fetch means pilot has configured it. Otherwise 503 with the
// reason, which the kubelet records in the pod's events.
func (h *statusHandler) serveReady(w http.ResponseWriter, r *http.Request) {
	if err := h.readiness(r.Context()); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeText(logr.FromContextOrDiscard(r.Context()), w, http.StatusOK, "ready\n")
}

func (h *statusHandler) readiness(ctx context.Context) error {
	if h.proxy.Draining() {
		return errors.New("draining")
	}
	select {
	case <-h.svidReady:
	default:
		return errors.New("no SVID yet")
	}
	if !h.proxy.Running() {
		return errors.New("envoy is not running")
	}
	state, err := h.proxy.EnvoyState(ctx)
	if err != nil {
		return err
	}
	if state != "LIVE" {
		return fmt.Errorf("envoy is %s", state)
	}
	return nil
}

// serveStatus serves h on lis until ctx ends, then shuts down gracefully.
func serveStatus(ctx context.Context, lis net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// Requests carry the logger, but not the shutdown: in-flight
		// probes finish during Shutdown.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	logr.FromContextOrDiscard(ctx).Info("serving status", "addr", lis.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve status: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown status server: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve status: %w", err)
	}
	return nil
}
