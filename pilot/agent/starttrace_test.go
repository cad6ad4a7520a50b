package agent

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
)

func recordingProvider(t testing.TB) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { require.NoError(t, tp.Shutdown(context.Background())) })
	return tp, exp
}

func fakeEnvoyStarter() *fakeStarter {
	return &fakeStarter{next: func(int) *fakeProc { return &fakeProc{exit: make(chan error, 1), ev: &events{}} }}
}

// readiness answers ReadinessPath with code() and counts the calls.
func readiness(code func() int, calls *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(code())
	})
}

func probeReady(h http.Handler) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, ReadinessPath, nil))
	return rec.Code
}

// spanByName is the one span called name (it fails on none or several).
func spanByName(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			found = append(found, s)
		}
	}
	require.Len(t, found, 1, "spans named %s", name)
	return found[0]
}

// waitSpans waits until exp has a span named name and returns every span
// exported by then.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, name string, within, tick time.Duration, msgAndArgs ...any) tracetest.SpanStubs {
	t.Helper()
	var spans tracetest.SpanStubs
	require.Eventually(t, func() bool {
		spans = exp.GetSpans()
		return slices.ContainsFunc(spans, func(s tracetest.SpanStub) bool { return s.Name == name })
	}, within, tick, msgAndArgs...)
	return spans
}

func attrMap(s tracetest.SpanStub) map[attribute.Key]string {
	out := map[attribute.Key]string{}
	for _, kv := range s.Attributes {
		out[kv.Key] = kv.Value.Emit()
	}
	return out
}

// TestStartTraceChain drives the start trace as the Sidecar does, with a
// fake Envoy: Envoy's start, LIVE seen by polling the admin state, then
// the first readiness 200 ends the trace; later probes change nothing.
func TestStartTraceChain(t *testing.T) {
	tp, exp := recordingProvider(t)
	var polls atomic.Int32
	state := func(context.Context) (string, error) {
		if polls.Add(1) < 3 {
			return "INITIALIZING", nil
		}
		return "LIVE", nil
	}
	started := time.Now().Add(-time.Second)
	st := newStartTrace(tp, started, state)
	ctx := st.begin(context.Background())
	require.True(t, st.recording())
	_, svid := tp.Tracer("test").Start(ctx, SpanSVIDFetch) // the agent's part
	svid.End()

	code := atomic.Int32{}
	code.Store(http.StatusServiceUnavailable)
	var calls atomic.Int32
	h := st.statusHandler(readiness(func() int { return int(code.Load()) }, &calls))
	assert.Equal(t, http.StatusServiceUnavailable, probeReady(h), "not ready: the trace goes on")

	p, err := st.starter(fakeEnvoyStarter()).Start([]string{"-c", "x"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return polls.Load() >= 3 }, 5*time.Second, time.Millisecond, "admin state polled until LIVE")
	waitSpans(t, exp, SpanEnvoyInit, 5*time.Second, time.Millisecond)
	code.Store(http.StatusOK)
	assert.Equal(t, http.StatusOK, probeReady(h))
	assert.Equal(t, http.StatusOK, probeReady(h))
	assert.EqualValues(t, 3, calls.Load(), "every probe reaches the real handler")
	st.finish(nil)

	spans := exp.GetSpans()
	require.Len(t, spans, 5, "root, fetch, envoy start, envoy init, startup probe")
	root := spanByName(t, spans, SpanStart)
	assert.False(t, root.Parent.IsValid(), "agent.start is a root")
	assert.Equal(t, started, root.StartTime, "the trace starts when the process did")
	assert.Equal(t, codes.Ok, root.Status.Code)
	assert.Equal(t, "true", attrMap(root)[AttrEnvoyStarted])
	for _, name := range []string{SpanSVIDFetch, SpanEnvoyStart, SpanEnvoyInit, SpanStartupProbe} {
		s := spanByName(t, spans, name)
		assert.Equal(t, root.SpanContext.SpanID(), s.Parent.SpanID(), "%s is a child of the root", name)
		assert.Equal(t, root.SpanContext.TraceID(), s.SpanContext.TraceID())
		assert.False(t, s.EndTime.After(root.EndTime), "%s ends within the root", name)
	}
	envoyStart, envoyInit, probe := spanByName(t, spans, SpanEnvoyStart), spanByName(t, spans, SpanEnvoyInit), spanByName(t, spans, SpanStartupProbe)
	assert.Equal(t, "1001", attrMap(envoyStart)[AttrEnvoyPID])
	assert.Equal(t, "1001", attrMap(envoyInit)[AttrEnvoyPID])
	assert.False(t, envoyInit.StartTime.Before(envoyStart.EndTime), "init follows the start")
	assert.False(t, probe.StartTime.Before(envoyInit.EndTime), "the probe wait follows LIVE")
	assert.Equal(t, root.EndTime, probe.EndTime, "the first 200 ends both")

	// A restarted Envoy after the start is not part of the trace.
	_, err = st.starter(fakeEnvoyStarter()).Start(nil)
	require.NoError(t, err)
	assert.Len(t, exp.GetSpans(), 5)
	p.(*fakeProc).exit <- nil
}

// TestStartTraceStoppedBeforeReady: a sidecar stopped before it was ready
// ends the open spans with an error instead of leaving them unexported.
func TestStartTraceStoppedBeforeReady(t *testing.T) {
	tp, exp := recordingProvider(t)
	st := newStartTrace(tp, time.Time{}, func(context.Context) (string, error) { return "", errors.New("refused") })
	st.begin(context.Background())
	_, err := st.starter(fakeEnvoyStarter()).Start(nil)
	require.NoError(t, err)
	st.finish(errors.New("boom"))

	spans := exp.GetSpans()
	require.Len(t, spans, 3)
	for _, name := range []string{SpanStart, SpanEnvoyInit} {
		s := spanByName(t, spans, name)
		assert.Equal(t, codes.Error, s.Status.Code, name)
		assert.Equal(t, "boom", s.Status.Description, name)
	}
	assert.Equal(t, codes.Ok, spanByName(t, spans, SpanEnvoyStart).Status.Code)

	st = newStartTrace(tp, time.Time{}, nil)
	st.begin(context.Background())
	st.finish(nil)
	assert.Equal(t, errStopped.Error(), exp.GetSpans()[3].Status.Description, "a clean stop before ready says so")
}

// TestStartTraceOffWithoutProvider: with a no-op provider (no OTLP
// endpoint) nothing is recorded, Envoy's admin API is never polled and the
// status handler is not wrapped.
func TestStartTraceOffWithoutProvider(t *testing.T) {
	st := newStartTrace(noop.NewTracerProvider(), time.Now(), func(context.Context) (string, error) {
		t.Error("polled Envoy's admin API with tracing off")
		return "LIVE", nil
	})
	st.begin(context.Background())
	assert.False(t, st.recording())
	inner := http.NewServeMux()
	assert.Same(t, inner, st.statusHandler(inner), "the status handler is used as it is")
	_, err := st.starter(fakeEnvoyStarter()).Start(nil)
	require.NoError(t, err)
	time.Sleep(5 * livePollInterval)
	st.finish(nil)
}
