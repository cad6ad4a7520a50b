package generator_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/generator/envoytest"
	"github.com/weftmesh/weft/pilot/model"
)

// fastFlush makes the tracers export every span at once (Envoy batches 5
// spans or 5 s), so tests wait milliseconds, not seconds.
var fastFlush = map[string]any{
	"tracing.opentelemetry.min_flush_spans":   1,
	"tracing.opentelemetry.flush_interval_ms": 100,
}

// Workload names of the pair's sidecars, their spans' service.name.
const (
	pairClientWorkload = "productpage-v1"
	pairServerWorkload = "reviews-v1"
)

// TestTracingWithEnvoy sends requests through a real client sidecar and
// server sidecar with pilot's tracing config and an OTLP receiver as the
// collector: a sampled request leaves one span per sidecar in one trace,
// linked caller → client sidecar → server sidecar → app; a request the
// caller did not sample reaches the app with the caller's traceparent and
// leaves no span, one the mesh did not sample reaches it with none; the
// caller's decision, sampled or not, is followed whatever the mesh's
// percentage.
func TestTracingWithEnvoy(t *testing.T) {
	bin, ok := envoytest.Binary()
	if !ok {
		t.Skip("no envoy binary (make envoy)")
	}
	// pair starts the sidecars with the flags' 1% and the namespace's
	// Telemetry sampling pct.
	pair := func(t *testing.T, pct float64) (*meshPair, *otlpReceiver) {
		rec := startOTLPReceiver(t)
		p := startMeshPairWith(t, bin, pairConfig{
			portName:  "http",
			telemetry: generator.Telemetry{Tracing: &generator.Tracing{CollectorHost: "127.0.0.1", CollectorPort: rec.port, SamplingPercent: 1}},
			objects:   model.Objects{Telemetry: []*model.TelemetryPolicy{tel(ns, model.TelemetrySettings{SamplingPercent: model.Some(pct)})}},
			runtime:   fastFlush,
		})
		return p, rec
	}

	t.Run("the mesh samples: spans from both sidecars, one trace", func(t *testing.T) {
		p, rec := pair(t, 100)
		// The caller's "not sampled" wins over 100% (parent-based): the
		// app gets the caller's trace, not sampled, and no span is sent
		// (checkSidecarSpans below finds only the next request's).
		const callerUnsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
		if got := sendTraced(t, p, callerUnsampled); got.traceID != "4bf92f3577b34da6a3ce929d0e0e4736" || got.flags != "00" {
			t.Errorf("app got traceparent %q for the caller's %q, want its trace, not sampled", got.raw, callerUnsampled)
		}
		app := sendTraced(t, p, "")
		if app.flags != "01" {
			t.Fatalf("app got traceparent %q, want a sampled one", app.raw)
		}
		checkSidecarSpans(t, rec, app, "")
	})

	t.Run("the mesh does not sample", func(t *testing.T) {
		p, rec := pair(t, 0)
		// Unsampled requests first: when the sampled one's spans are in,
		// theirs would be too (every flush sends all buffered spans).
		// No tracer sees a request the mesh does not sample: it reaches the
		// app without a trace context.
		if fresh := sendTraced(t, p, ""); fresh.raw != "" {
			t.Errorf("app got traceparent %q, want none", fresh.raw)
		}
		const callerUnsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
		unsampled := sendTraced(t, p, callerUnsampled)
		if unsampled.traceID != "4bf92f3577b34da6a3ce929d0e0e4736" || unsampled.flags != "00" {
			t.Errorf("app got traceparent %q for the caller's %q, want its trace, not sampled", unsampled.raw, callerUnsampled)
		}
		const callerSampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		sampled := sendTraced(t, p, callerSampled)
		if sampled.traceID != "0af7651916cd43dd8448eb211c80319c" || sampled.flags != "01" {
			t.Fatalf("app got traceparent %q for the caller's %q, want its trace, sampled", sampled.raw, callerSampled)
		}
		checkSidecarSpans(t, rec, sampled, "b7ad6b7169203331")
	})
}

// TestTracingRuntimeOverride: the sampling runtime key overrides the
// generated percentage in a running proxy (1% here; the key says all).
func TestTracingRuntimeOverride(t *testing.T) {
	bin, ok := envoytest.Binary()
	if !ok {
		t.Skip("no envoy binary (make envoy)")
	}
	rec := startOTLPReceiver(t)
	runtime := map[string]any{generator.SamplingRuntimeKey: 1000000}
	for k, v := range fastFlush {
		runtime[k] = v
	}
	p := startMeshPairWith(t, bin, pairConfig{
		portName:  "http",
		telemetry: generator.Telemetry{Tracing: &generator.Tracing{CollectorHost: "127.0.0.1", CollectorPort: rec.port, SamplingPercent: 1}},
		runtime:   runtime,
	})
	for i := range 5 {
		if got := sendTraced(t, p, ""); got.flags != "01" {
			t.Fatalf("request %d: app got traceparent %q, want a sampled one", i, got.raw)
		}
	}
}

// traceparent is a W3C traceparent header, split.
type traceparent struct {
	raw, traceID, parentID, flags string
}

// sendTraced sends a request through the client sidecar with the given
// traceparent (none if empty) and returns the one the app got (the zero
// value when it got none and none was sent).
func sendTraced(t *testing.T, p *meshPair, tp string) traceparent {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.serviceURL+"/reviews/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if tp != "" {
		req.Header.Set("traceparent", tp)
	}
	do(t, req)
	got := p.app.lastHeaders().Values("traceparent")
	switch {
	case len(got) == 0 && tp == "":
		return traceparent{} // nobody traced it
	case len(got) != 1:
		t.Fatalf("app got traceparent %q, want one", got)
	}
	f := strings.Split(got[0], "-")
	if len(f) != 4 || f[0] != "00" {
		t.Fatalf("app got traceparent %q, want version 00 and four fields", got[0])
	}
	return traceparent{raw: got[0], traceID: f[1], parentID: f[2], flags: f[3]}
}

// checkSidecarSpans: the receiver gets exactly the client sidecar's CLIENT span
// (a child of callerSpan, or a root without one) and the server
// sidecar's SERVER span, its child, in app's trace; the app's parent is
// the server sidecar's span.
func checkSidecarSpans(t *testing.T, rec *otlpReceiver, app traceparent, callerSpan string) {
	t.Helper()
	rec.waitSpans(t, 10*time.Second, func(s []receivedSpan) bool { return len(s) >= 2 })
	time.Sleep(300 * time.Millisecond) // three flush intervals: a surplus would show
	spans := rec.received()
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2: %v", len(spans), spans)
	}
	var client, server receivedSpan
	for _, s := range spans {
		switch s.service {
		case pairClientWorkload:
			client = s
		case pairServerWorkload:
			server = s
		}
	}
	if client.kind != tracepb.Span_SPAN_KIND_CLIENT || server.kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Fatalf("want a CLIENT span of %s and a SERVER span of %s, got %v", pairClientWorkload, pairServerWorkload, spans)
	}
	if client.traceID != app.traceID || server.traceID != app.traceID {
		t.Errorf("spans %v are not in the app's trace %s", spans, app.traceID)
	}
	if client.parentID != callerSpan {
		t.Errorf("client sidecar's span has parent %q, want %q", client.parentID, callerSpan)
	}
	if server.parentID != client.spanID {
		t.Errorf("server sidecar's span has parent %q, want the client sidecar's %s", server.parentID, client.spanID)
	}
	if app.parentID != server.spanID {
		t.Errorf("app's traceparent names parent %s, want the server sidecar's span %s", app.parentID, server.spanID)
	}
}
