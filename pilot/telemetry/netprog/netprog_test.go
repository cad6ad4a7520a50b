package netprog

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	cds = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	eds = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
)

var t0 = time.Unix(1_700_000_000, 0)

// provider is what pilot/telemetry.Setup builds, with an in-memory
// exporter: synchronous, so spans are visible as soon as they end.
func provider(exp *tracetest.InMemoryExporter) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithIDGenerator(IDGenerator()))
}

func slice(rv string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{
		Namespace: "default", Name: "httpbin-abcde", UID: "0b6c8f3e-uid", ResourceVersion: rv,
		Labels:      map[string]string{discoveryv1.LabelServiceName: "httpbin"},
		Annotations: map[string]string{TriggerTimeAnnotation: t0.Add(-time.Second).Format(time.RFC3339Nano)},
	}}
}

// clock is a settable Now.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) advance(d time.Duration) { c.now = c.now.Add(d) }

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		out[kv.Key] = kv.Value
	}
	return out
}

func byName(spans tracetest.SpanStubs, name string) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func TestChangeIDs(t *testing.T) {
	a := FromEndpointSlice(slice("100"), false, t0)
	assert.Equal(t, "httpbin", a.Service)
	assert.True(t, t0.Add(-time.Second).Equal(a.Trigger))
	assert.True(t, a.Traceable())

	// Another component seeing the same write later derives the same IDs.
	b := FromEndpointSlice(slice("100"), false, t0.Add(time.Minute))
	assert.Equal(t, a.TraceID(), b.TraceID())
	assert.Equal(t, a.RootSpanContext(), b.RootSpanContext())

	next := FromEndpointSlice(slice("101"), false, t0)
	assert.NotEqual(t, a.TraceID(), next.TraceID())

	// Deletes ignore the resourceVersion (the watch's delete carries a new
	// one pilot never sees) but differ from every update.
	d1, d2 := FromEndpointSlice(slice("102"), true, t0), Change{UID: a.UID, Deleted: true}
	assert.Equal(t, d1.TraceID(), d2.TraceID())
	assert.NotEqual(t, a.TraceID(), d1.TraceID())
	assert.True(t, d2.Traceable())
	assert.False(t, Change{UID: "x"}.Traceable())
}

func TestSamplingIsDeterministic(t *testing.T) {
	in := 0
	for i := range 1000 {
		c := Change{UID: "u", ResourceVersion: string(rune('a'+i%26)) + time.Duration(i).String()}
		assert.Equal(t, c.Sampled(0.3), c.Sampled(0.3))
		if c.Sampled(0.3) {
			in++
		}
	}
	assert.InDelta(t, 300, in, 60)
	assert.True(t, Change{}.Sampled(1))
	assert.False(t, Change{}.Sampled(0))
}

// TestOneTraceAcrossComponents is the point of the package: weft-proxy on
// two nodes and pilot record the same slice change independently, and all
// their spans land in one trace under pilot's root span.
func TestOneTraceAcrossComponents(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	ctx := context.Background()

	for i, node := range []string{"node-a", "node-b"} {
		r := NewSyncRecorder(SyncConfig{TracerProvider: provider(exp), Node: node})
		seen := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		r.Synced(ctx, []Change{FromEndpointSlice(slice("100"), false, seen)},
			Sync{End: seen.Add(5 * time.Millisecond), RulesWritten: 12})
	}

	clk := &clock{now: t0}
	var converged []time.Duration
	p := NewPushes(PushConfig{TracerProvider: provider(exp), Now: clk.Now,
		OnConverged: func(d time.Duration, r Result) { converged = append(converged, d); assert.Equal(t, ACK, r) }})
	p.Pushed("client.default", 1, map[string]string{eds: "v1"}, nil, nil) // initial config
	p.Answered("client.default", eds, "v1", false, "")
	c := FromEndpointSlice(slice("100"), false, t0.Add(20*time.Millisecond))
	p.Seen(c, 2)
	clk.advance(100 * time.Millisecond)
	p.Pushed("client.default", 2, map[string]string{eds: "v2"}, []string{eds}, nil)
	p.RoundDone(2)
	assert.Empty(t, byName(exp.GetSpans(), SpanPush), "a push span must wait for the ACK")
	clk.advance(3 * time.Millisecond)
	p.Answered("client.default", eds, "v2", false, "")

	spans := exp.GetSpans()
	require.Len(t, spans, 4)
	root := c.RootSpanContext()
	for _, s := range spans {
		assert.Equal(t, c.TraceID(), s.SpanContext.TraceID(), s.Name)
	}
	syncs := byName(spans, SpanSync)
	require.Len(t, syncs, 2)
	assert.Equal(t, "node-a", attrs(syncs[0])[AttrNode].AsString())
	assert.Equal(t, int64(12), attrs(syncs[0])[AttrRulesWritten].AsInt64())
	assert.Equal(t, "100", attrs(syncs[1])[AttrResourceVersion].AsString())
	for _, s := range syncs {
		assert.Equal(t, root.SpanID(), s.Parent.SpanID())
	}

	pushes := byName(spans, SpanPush)
	require.Len(t, pushes, 1)
	ps := pushes[0]
	assert.Equal(t, root.SpanID(), ps.Parent.SpanID())
	assert.Equal(t, c.Seen, ps.StartTime, "a span starts when the component saw the change")
	assert.Equal(t, clk.now, ps.EndTime, "and a push span ends at the ACK")
	assert.Equal(t, "ACK", attrs(ps)[AttrStatus].AsString())
	assert.Equal(t, []string{eds}, attrs(ps)[AttrTypeURLs].AsStringSlice())
	assert.Equal(t, "client.default", attrs(ps)[AttrProxyID].AsString())
	assert.Equal(t, codes.Ok, ps.Status.Code)
	assert.NotContains(t, attrs(ps), AttrResourceVersion, "the root carries the change, its children need not")

	roots := byName(spans, SpanChange)
	require.Len(t, roots, 1)
	assert.Equal(t, root.SpanID(), roots[0].SpanContext.SpanID())
	assert.False(t, roots[0].Parent.IsValid())
	assert.True(t, c.Trigger.Equal(roots[0].StartTime), "the root starts at the trigger time")
	assert.Equal(t, "100", attrs(roots[0])[AttrResourceVersion].AsString())
	assert.Equal(t, "httpbin-abcde", attrs(roots[0])[AttrSliceName].AsString())
	assert.Equal(t, int64(1), attrs(roots[0])[AttrAffected].AsInt64())
	assert.Equal(t, []time.Duration{83 * time.Millisecond}, converged)
	assert.Zero(t, p.Pending())
}

func TestPushWaitsForEveryChangedType(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	clk := &clock{now: t0}
	var pushes []Result
	p := NewPushes(PushConfig{TracerProvider: provider(exp), Now: clk.Now,
		OnPush: func(_ time.Duration, r Result) { pushes = append(pushes, r) }})
	p.Pushed("a.ns", 0, map[string]string{cds: "c0", eds: "e0"}, []string{cds, eds}, nil)
	p.Seen(Change{Namespace: "ns", Name: "s", UID: "u", ResourceVersion: "1", Seen: t0}, 1)
	p.Pushed("a.ns", 1, map[string]string{cds: "c1", eds: "e1"}, []string{eds, cds}, nil)
	p.RoundDone(1)

	p.Answered("a.ns", cds, "c1", false, "")
	assert.Empty(t, byName(exp.GetSpans(), SpanPush), "EDS is still unanswered")
	assert.Equal(t, 1, p.Pending())
	p.Answered("a.ns", eds, "e1", false, "")
	spans := byName(exp.GetSpans(), SpanPush)
	require.Len(t, spans, 1)
	assert.Equal(t, []string{cds, eds}, attrs(spans[0])[AttrTypeURLs].AsStringSlice(), "sorted")
	// The initial push was answered by the newer versions too.
	assert.Equal(t, []Result{ACK, ACK}, pushes)
	assert.Zero(t, p.Pending())
}

func TestNACKEndsWithError(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	clk := &clock{now: t0}
	var result Result
	p := NewPushes(PushConfig{TracerProvider: provider(exp), Now: clk.Now,
		OnConverged: func(_ time.Duration, r Result) { result = r }})
	p.Pushed("a.ns", 0, map[string]string{eds: "e0"}, nil, nil)
	p.Pushed("b.ns", 0, map[string]string{eds: "e0"}, nil, nil)
	c := Change{Namespace: "ns", Name: "s", UID: "u", ResourceVersion: "1", Seen: t0}
	p.Seen(c, 1)
	p.Pushed("a.ns", 1, map[string]string{eds: "e1"}, []string{eds}, nil)
	p.Pushed("b.ns", 1, map[string]string{eds: "e1"}, []string{eds}, nil)
	p.RoundDone(1)
	p.Answered("a.ns", eds, "e1", true, "bad cluster")
	p.Answered("b.ns", eds, "e1", false, "")

	spans := byName(exp.GetSpans(), SpanPush)
	require.Len(t, spans, 2)
	assert.Equal(t, "NACK", attrs(spans[0])[AttrStatus].AsString())
	assert.Equal(t, codes.Error, spans[0].Status.Code)
	assert.Equal(t, "bad cluster", spans[0].Status.Description)
	assert.Equal(t, codes.Ok, spans[1].Status.Code)
	assert.Equal(t, NACK, result)
	root := byName(exp.GetSpans(), SpanChange)
	require.Len(t, root, 1)
	assert.Equal(t, codes.Error, root[0].Status.Code)
	assert.Equal(t, int64(1), attrs(root[0])[AttrNACKed].AsInt64())
}

// TestSupersededChange: a newer version of the slice is pushed before the
// proxy ACKed the older one. The newer ACK answers both; the older change's
// span says it was superseded.
func TestSupersededChange(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	clk := &clock{now: t0}
	p := NewPushes(PushConfig{TracerProvider: provider(exp), Now: clk.Now})
	p.Pushed("a.ns", 0, map[string]string{eds: "e0"}, nil, nil)
	v1 := Change{Namespace: "ns", Name: "s", UID: "u", ResourceVersion: "1", Seen: t0}
	v2 := Change{Namespace: "ns", Name: "s", UID: "u", ResourceVersion: "2", Seen: t0.Add(time.Millisecond)}
	p.Seen(v1, 1)
	p.Pushed("a.ns", 1, map[string]string{eds: "e1"}, []string{eds}, nil)
	p.RoundDone(1)
	p.Seen(v2, 2)
	p.Pushed("a.ns", 2, map[string]string{eds: "e2"}, []string{eds}, nil)
	p.RoundDone(2)
	p.Answered("a.ns", eds, "e1", false, "") // stale: only answers the first push
	p.Answered("a.ns", eds, "e2", false, "")

	spans := byName(exp.GetSpans(), SpanPush)
	require.Len(t, spans, 2)
	assert.Equal(t, v1.TraceID(), spans[0].SpanContext.TraceID())
	assert.False(t, attrs(spans[0])[AttrSuperseded].AsBool())
	assert.Equal(t, v2.TraceID(), spans[1].SpanContext.TraceID())

	// Same again, but the ACK of the first version never comes.
	exp.Reset()
	v3 := Change{Namespace: "ns", Name: "s", UID: "u", ResourceVersion: "3", Seen: t0}
	v4 := Change{Namespace: "ns", Name: "s", UID: "u", ResourceVersion: "4", Seen: t0}
	p.Seen(v3, 3)
	p.Pushed("a.ns", 3, map[string]string{eds: "e3"}, []string{eds}, nil)
	p.Seen(v4, 4)
	p.Pushed("a.ns", 4, map[string]string{eds: "e4"}, []string{eds}, nil)
	p.RoundDone(4)
	p.Answered("a.ns", eds, "e4", false, "")
	spans = byName(exp.GetSpans(), SpanPush)
	require.Len(t, spans, 2)
	assert.True(t, attrs(spans[0])[AttrSuperseded].AsBool(), "v3 went out in v4's config")
	assert.False(t, attrs(spans[1])[AttrSuperseded].AsBool())
	assert.Zero(t, p.Pending())

	// Both versions in one push (one debounce): the older is superseded.
	exp.Reset()
	p.Seen(Change{Namespace: "ns", Name: "s", UID: "u", ResourceVersion: "5", Seen: t0}, 5)
	p.Seen(Change{Namespace: "ns", Name: "s", UID: "u", ResourceVersion: "6", Seen: t0}, 6)
	p.Pushed("a.ns", 6, map[string]string{eds: "e6"}, []string{eds}, nil)
	p.RoundDone(6)
	p.Answered("a.ns", eds, "e6", false, "")
	spans = byName(exp.GetSpans(), SpanPush)
	require.Len(t, spans, 2)
	assert.True(t, attrs(spans[0])[AttrSuperseded].AsBool())
	assert.False(t, attrs(spans[1])[AttrSuperseded].AsBool())
}

func TestUnaffectedProxiesGetNoSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	clk := &clock{now: t0}
	converged := 0
	p := NewPushes(PushConfig{TracerProvider: provider(exp), Now: clk.Now,
		OnConverged: func(time.Duration, Result) { converged++ }})
	for _, id := range []string{"a.ns", "b.ns", "c.ns"} {
		p.Pushed(id, 0, map[string]string{eds: "e0"}, nil, nil)
	}
	mine := Change{Namespace: "ns", Name: "mine", UID: "u1", ResourceVersion: "1", Seen: t0}
	other := Change{Namespace: "ns", Name: "other", UID: "u2", ResourceVersion: "1", Seen: t0}
	p.Seen(mine, 1)
	p.Seen(other, 2)
	onlyMine := func(c Change) bool { return c.Name == "mine" }
	p.Pushed("a.ns", 2, map[string]string{eds: "e1"}, []string{eds}, onlyMine)
	p.Unchanged("b.ns", 2)
	p.Pushed("c.ns", 2, map[string]string{eds: "e1"}, []string{eds}, onlyMine)
	p.RoundDone(2)
	// "other" reached nobody: its trace ends now, without a convergence
	// sample.
	require.Len(t, byName(exp.GetSpans(), SpanChange), 1)
	assert.Zero(t, converged)
	p.Answered("a.ns", eds, "e1", false, "")
	p.Answered("c.ns", eds, "e1", false, "")
	assert.Len(t, byName(exp.GetSpans(), SpanPush), 2)
	assert.Equal(t, 1, converged)

	// b.ns's view moved on with the round: a later change is not
	// attributed to the old ones.
	p.Seen(Change{Namespace: "ns", Name: "mine", UID: "u1", ResourceVersion: "2", Seen: t0}, 3)
	p.Pushed("b.ns", 3, map[string]string{eds: "e3"}, []string{eds}, nil)
	p.RoundDone(3)
	p.Answered("b.ns", eds, "e3", false, "")
	assert.Len(t, byName(exp.GetSpans(), SpanPush), 3)
}

func TestTimeoutAndDisconnect(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	clk := &clock{now: t0}
	var results []Result
	p := NewPushes(PushConfig{TracerProvider: provider(exp), Now: clk.Now, Timeout: time.Minute,
		OnPush: func(_ time.Duration, r Result) { results = append(results, r) }})
	p.Pushed("a.ns", 0, map[string]string{eds: "e0"}, nil, nil)
	p.Pushed("b.ns", 0, map[string]string{eds: "e0"}, nil, nil)
	p.Seen(Change{Namespace: "ns", Name: "s", UID: "u", ResourceVersion: "1", Seen: t0}, 1)
	p.Pushed("a.ns", 1, map[string]string{eds: "e1"}, []string{eds}, nil)
	p.Pushed("b.ns", 1, map[string]string{eds: "e1"}, []string{eds}, nil)
	p.RoundDone(1)
	p.Gone("b.ns")
	clk.advance(time.Minute)
	p.Expire()
	assert.Equal(t, []Result{ACK, ACK, Disconnected, Timeout}, results)
	spans := byName(exp.GetSpans(), SpanPush)
	require.Len(t, spans, 2)
	assert.Equal(t, "DISCONNECTED", attrs(spans[0])[AttrStatus].AsString())
	assert.Equal(t, "TIMEOUT", attrs(spans[1])[AttrStatus].AsString())
	assert.Zero(t, p.Pending())
}

// TestRootNeedsIDGenerator: with a provider that ignores the forced IDs the
// root span would start a stray trace, so none is exported, and the push
// spans carry the change's attributes in its place.
func TestRootNeedsIDGenerator(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	p := NewPushes(PushConfig{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))})
	p.Pushed("a.ns", 0, map[string]string{eds: "e0"}, nil, nil)
	c := Change{Namespace: "ns", Name: "s", UID: "u", ResourceVersion: "1", Seen: t0}
	p.Seen(c, 1)
	p.Pushed("a.ns", 1, map[string]string{eds: "e1"}, []string{eds}, nil)
	p.RoundDone(1)
	assert.Empty(t, exp.GetSpans())
	p.Answered("a.ns", eds, "e1", false, "")
	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	assert.Equal(t, SpanPush, spans[0].Name)
	assert.Equal(t, c.TraceID(), spans[0].SpanContext.TraceID())
	assert.Equal(t, "1", attrs(spans[0])[AttrResourceVersion].AsString())
	assert.Equal(t, "s", attrs(spans[0])[AttrSliceName].AsString())
	assert.Equal(t, "a.ns", attrs(spans[0])[AttrProxyID].AsString())
	assert.Zero(t, p.Pending())
}

// TestConcurrentAnswers: proxies answer on their own streams' goroutines;
// the spans are emitted outside the lock, and every one arrives (run with
// -race).
func TestConcurrentAnswers(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	var mu sync.Mutex
	var pushed []Result
	p := NewPushes(PushConfig{TracerProvider: provider(exp),
		OnPush: func(_ time.Duration, r Result) { mu.Lock(); pushed = append(pushed, r); mu.Unlock() }})
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = fmt.Sprintf("p%d.ns", i)
		p.Pushed(ids[i], 0, map[string]string{eds: "e0"}, nil, nil)
	}
	p.Seen(Change{Namespace: "ns", Name: "s", UID: "u", ResourceVersion: "1", Seen: time.Now()}, 1)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			p.Pushed(id, 1, map[string]string{cds: "c1", eds: "e1"}, []string{cds, eds}, nil)
			p.Answered(id, eds, "e1", false, "")
			p.Answered(id, cds, "c1", false, "")
		})
	}
	wg.Wait()
	p.RoundDone(1)
	assert.Len(t, byName(exp.GetSpans(), SpanPush), len(ids))
	assert.Len(t, byName(exp.GetSpans(), SpanChange), 1)
	assert.Len(t, pushed, 2*len(ids), "initial configs and the change's pushes")
	assert.Zero(t, p.Pending())
}

// TestEmitterKeepsOrder: after Start, the callers only queue; the
// emitter goroutine emits the push spans, then the root, and when stopped
// what is left.
func TestEmitterKeepsOrder(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	p := NewPushes(PushConfig{TracerProvider: provider(exp)})
	ctx, cancel := context.WithCancel(context.Background())
	p.Start(ctx)
	ids := []string{"a.ns", "b.ns", "c.ns"}
	for _, id := range ids {
		p.Pushed(id, 0, map[string]string{eds: "e0"}, nil, nil)
	}
	p.Seen(Change{Namespace: "ns", Name: "s", UID: "u", ResourceVersion: "1", Seen: time.Now()}, 1)
	for _, id := range ids {
		p.Pushed(id, 1, map[string]string{eds: "e1"}, []string{eds}, nil)
	}
	p.RoundDone(1)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() { p.Answered(id, eds, "e1", false, "") })
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for len(exp.GetSpans()) < len(ids)+1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	spans := exp.GetSpans()
	require.Len(t, spans, len(ids)+1)
	assert.Equal(t, SpanChange, spans[len(ids)].Name, "the root follows its children")

	cancel()
	for {
		p.mu.Lock()
		running := p.running
		p.mu.Unlock()
		if !running {
			break
		}
		time.Sleep(time.Millisecond)
	}

	// What is queued when the emitter stops is emitted before it returns;
	// after that, callers emit themselves.
	exp.Reset()
	p.mu.Lock()
	p.running = true // as if the emitter were busy elsewhere
	p.mu.Unlock()
	p.Seen(Change{Namespace: "ns", Name: "s", UID: "u", ResourceVersion: "2", Seen: time.Now()}, 2)
	p.Pushed("a.ns", 2, map[string]string{eds: "e2"}, []string{eds}, nil)
	p.RoundDone(2)
	p.Answered("a.ns", eds, "e2", false, "")
	assert.Empty(t, exp.GetSpans(), "queued for the emitter")
	p.run(ctx) // cancelled already: drains and returns
	assert.Len(t, exp.GetSpans(), 2, "a.ns's push and the root")
	p.Seen(Change{Namespace: "ns", Name: "s", UID: "u", ResourceVersion: "3", Seen: time.Now()}, 3)
	p.Pushed("b.ns", 3, map[string]string{eds: "e3"}, []string{eds}, nil)
	p.RoundDone(3)
	p.Answered("b.ns", eds, "e3", false, "")
	assert.Len(t, exp.GetSpans(), 4)
	assert.Zero(t, p.Pending())
}

func TestSyncSupersededInOneBatch(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	r := NewSyncRecorder(SyncConfig{TracerProvider: provider(exp), Node: "n"})
	r.Synced(context.Background(), []Change{
		FromEndpointSlice(slice("1"), false, t0),
		FromEndpointSlice(slice("2"), false, t0.Add(time.Millisecond)),
		{Namespace: "x", Name: "no-uid", Seen: t0},
	}, Sync{End: t0.Add(time.Second), Full: true})
	spans := exp.GetSpans()
	require.Len(t, spans, 2, "a change without UID cannot be linked and is skipped")
	assert.True(t, attrs(spans[0])[AttrSuperseded].AsBool())
	assert.False(t, attrs(spans[1])[AttrSuperseded].AsBool())
	assert.Equal(t, "full", attrs(spans[1])[AttrSyncMode].AsString())
	assert.Equal(t, t0.Add(time.Second), spans[1].EndTime)
}
