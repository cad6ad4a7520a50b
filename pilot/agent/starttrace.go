package agent

import (
	"context"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/weftmesh/weft/pilot/telemetry"
)

// livePollInterval is how often the start trace asks Envoy's admin API
// whether it is LIVE, between Envoy's start and that moment only. It bounds
// the error of SpanEnvoyInit's end.
const livePollInterval = 20 * time.Millisecond

// startTrace records the sidecar's start-up chain as one trace: the root
// SpanStart from the agent's start to the first readiness answer 200 (the
// kubelet's startup probe passing, after which the app containers start),
// with the agent's SVID spans, SpanEnvoyStart, SpanEnvoyInit and
// SpanStartupProbe as children. With a no-op TracerProvider the root does
// not record and every method returns at once: no polling, no wrapping.
type startTrace struct {
	tracer  trace.Tracer
	started time.Time
	state   func(context.Context) (string, error) // Envoy's server state

	root   trace.Span
	ctx    context.Context // carries root; ends with finish
	cancel context.CancelFunc

	mu         sync.Mutex
	envoyUp    bool       // the first Envoy was started
	init       trace.Span // SpanEnvoyInit while Envoy is not LIVE
	probe      trace.Span // SpanStartupProbe while no readiness answer 200
	rootClosed bool
}

func newStartTrace(tp trace.TracerProvider, started time.Time, state func(context.Context) (string, error)) *startTrace {
	return &startTrace{tracer: tp.Tracer(TracerName), started: started, state: state}
}

// begin starts the root span (at the configured start time, else now) and
// returns ctx carrying it, for the agent's first SVID.
func (t *startTrace) begin(ctx context.Context) context.Context {
	opts := []trace.SpanStartOption{trace.WithNewRoot()}
	if !t.started.IsZero() {
		opts = append(opts, trace.WithTimestamp(t.started))
	}
	ctx, t.root = t.tracer.Start(ctx, SpanStart, opts...)
	t.ctx, t.cancel = context.WithCancel(ctx)
	return ctx
}

func (t *startTrace) recording() bool { return t.root != nil && t.root.IsRecording() }

// finish ends whatever is still open when the sidecar stops: a start that
// never became ready ends with err, or errStopped.
func (t *startTrace) finish(err error) {
	t.cancel()
	if err == nil {
		err = errStopped
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range []trace.Span{t.init, t.probe} {
		if s != nil {
			telemetry.EndSpan(s, err)
		}
	}
	t.init, t.probe = nil, nil
	if !t.rootClosed {
		t.rootClosed = true
		telemetry.EndSpan(t.root, err)
	}
}

// starter wraps Envoy's Starter so the first start is SpanEnvoyStart and
// opens SpanEnvoyInit.
func (t *startTrace) starter(s Starter) Starter { return tracedStarter{Starter: s, t: t} }

type tracedStarter struct {
	Starter
	t *startTrace
}

// Start implements Starter.
func (s tracedStarter) Start(args []string) (Process, error) {
	t := s.t
	t.mu.Lock()
	first := !t.envoyUp && !t.rootClosed && t.recording()
	t.envoyUp = true
	t.mu.Unlock()
	if !first {
		return s.Starter.Start(args)
	}
	_, span := t.tracer.Start(t.ctx, SpanEnvoyStart)
	p, err := s.Starter.Start(args)
	if err != nil {
		telemetry.EndSpan(span, err)
		return nil, err
	}
	span.SetAttributes(AttrEnvoyPID.Int(p.Pid()))
	telemetry.EndSpan(span, nil)
	t.mu.Lock()
	if !t.rootClosed {
		_, t.init = t.tracer.Start(t.ctx, SpanEnvoyInit, trace.WithAttributes(AttrEnvoyPID.Int(p.Pid())))
	}
	t.mu.Unlock()
	go t.pollLive()
	return p, nil
}

// pollLive ends SpanEnvoyInit when Envoy's admin API says LIVE, and opens
// SpanStartupProbe.
func (t *startTrace) pollLive() {
	tick := time.NewTicker(livePollInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		if st, err := t.state(t.ctx); err == nil && st == "LIVE" {
			t.live()
			return
		}
	}
}

func (t *startTrace) live() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.init == nil {
		return
	}
	telemetry.EndSpan(t.init, nil)
	t.init = nil
	_, t.probe = t.tracer.Start(t.ctx, SpanStartupProbe)
}

// ready ends the trace at the first readiness answer 200.
func (t *startTrace) ready() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rootClosed {
		return
	}
	now := trace.WithTimestamp(time.Now())
	if t.init != nil {
		// The probe got there before the poll: Envoy is LIVE now.
		telemetry.EndSpan(t.init, nil, now)
		t.init = nil
	}
	if t.probe != nil {
		telemetry.EndSpan(t.probe, nil, now)
		t.probe = nil
	}
	t.rootClosed = true
	t.root.SetAttributes(AttrEnvoyStarted.Bool(t.envoyUp))
	telemetry.EndSpan(t.root, nil, now)
	t.cancel()
}

// statusHandler ends the trace when h first answers ReadinessPath with 200.
func (t *startTrace) statusHandler(h http.Handler) http.Handler {
	if !t.recording() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ReadinessPath || t.closed() {
			h.ServeHTTP(w, r)
			return
		}
		rec := &codeRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		if rec.code == http.StatusOK {
			t.ready()
		}
	})
}

func (t *startTrace) closed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rootClosed
}

// codeRecorder remembers the status code written through it.
type codeRecorder struct {
	http.ResponseWriter
	code int
}

// WriteHeader implements http.ResponseWriter.
func (c *codeRecorder) WriteHeader(code int) {
	c.code = code
	c.ResponseWriter.WriteHeader(code)
}
