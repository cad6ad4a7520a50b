package tracestore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// tid and sid make valid IDs from small numbers.
func tid(n int) string { return fmt.Sprintf("%032x", n) }
func sid(n int) string { return fmt.Sprintf("%016x", n) }

func span(trace, id, parent int, name, service string, startMS, endMS int) Span {
	sp := Span{
		TraceID: tid(trace), SpanID: sid(id), Name: name, Service: service, Kind: KindInternal,
		Start: t0.Add(time.Duration(startMS) * time.Millisecond), End: t0.Add(time.Duration(endMS) * time.Millisecond),
		Status: Status{Code: StatusUnset},
	}
	if parent != 0 {
		sp.ParentSpanID = sid(parent)
	}
	return sp
}

func newStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := New(cfg)
	require.NoError(t, err)
	return s
}

func TestSummaryUsesTheRootOnceItArrives(t *testing.T) {
	s := newStore(t, Config{})
	// A network-programming trace: children first, the root last (pilot
	// ends it when every proxy answered).
	r := s.Add([]Span{
		span(1, 2, 1, "weft-proxy.sync", "weft-proxy", 20, 40),
		span(1, 3, 1, "pilot.push", "weft-pilot", 10, 60),
	})
	assert.Equal(t, AddResult{Accepted: 2}, r)
	got := s.Traces(Query{})
	require.Len(t, got, 1)
	assert.Equal(t, Summary{TraceID: tid(1), RootName: "pilot.push", Start: t0.Add(10 * time.Millisecond),
		End: t0.Add(60 * time.Millisecond), SpanCount: 2, Services: []string{"weft-pilot", "weft-proxy"}}, got[0],
		"without its root the trace is named by its earliest span")

	s.Add([]Span{span(1, 1, 0, "endpointslice.change", "weft-pilot", 0, 70)})
	got = s.Traces(Query{})
	require.Len(t, got, 1)
	assert.Equal(t, "endpointslice.change", got[0].RootName)
	assert.Equal(t, t0, got[0].Start)
	assert.Equal(t, t0.Add(70*time.Millisecond), got[0].End)
	assert.Equal(t, 3, got[0].SpanCount)
}

func TestTraceSpansAreSortedByStart(t *testing.T) {
	s := newStore(t, Config{})
	s.Add([]Span{span(1, 3, 1, "c", "a", 30, 31), span(1, 1, 0, "root", "a", 0, 50), span(1, 2, 1, "b", "a", 10, 11)})
	spans, ok := s.Trace(tid(1))
	require.True(t, ok)
	var names []string
	for _, sp := range spans {
		names = append(names, sp.Name)
	}
	assert.Equal(t, []string{"root", "b", "c"}, names)
	assert.NotNil(t, spans[0].Attributes, "maps are never nil: the API promises objects")
	assert.NotNil(t, spans[0].Resource)
	_, ok = s.Trace(tid(2))
	assert.False(t, ok)
}

func TestQueryFiltersNewestFirstAndLimits(t *testing.T) {
	s := newStore(t, Config{})
	s.Add([]Span{
		span(1, 1, 0, "endpointslice.change", "weft-pilot", 0, 10),
		span(1, 2, 1, "weft-proxy.sync", "weft-proxy", 1, 5),
		span(2, 1, 0, "endpointslice.change", "weft-pilot", 100, 110),
		span(3, 1, 0, "GET /headers", "curl", 50, 60),
		span(3, 2, 1, "GET /headers", "httpbin", 51, 59),
	})
	ids := func(q Query) []string {
		var out []string
		for _, sum := range s.Traces(q) {
			out = append(out, sum.TraceID)
		}
		return out
	}
	assert.Equal(t, []string{tid(2), tid(3), tid(1)}, ids(Query{}), "newest first")
	assert.Equal(t, []string{tid(2), tid(1)}, ids(Query{Name: "endpointslice.change"}))
	assert.Equal(t, []string{tid(1)}, ids(Query{Service: "weft-proxy"}))
	assert.Equal(t, []string{tid(3)}, ids(Query{Name: "GET /headers", Service: "httpbin"}))
	assert.Equal(t, []string{tid(2)}, ids(Query{Name: "endpointslice.change", Limit: 1}))
	assert.Empty(t, ids(Query{Name: "nothing"}))
	assert.NotNil(t, s.Traces(Query{Name: "nothing"}), "an empty listing is [] in JSON, not null")
}

func TestOldestTraceIsEvicted(t *testing.T) {
	s := newStore(t, Config{MaxTraces: 2})
	s.Add([]Span{span(1, 1, 0, "one", "a", 0, 1)})
	s.Add([]Span{span(2, 1, 0, "two", "a", 0, 1)})
	// A late span of the first trace does not make it younger: arrival of
	// its first span is what counts.
	s.Add([]Span{span(1, 2, 1, "one-child", "a", 0, 1)})
	s.Add([]Span{span(3, 1, 0, "three", "a", 0, 1)})
	_, ok := s.Trace(tid(1))
	assert.False(t, ok, "the trace that arrived first is evicted")
	for _, id := range []int{2, 3} {
		_, ok := s.Trace(tid(id))
		assert.True(t, ok, "trace %d", id)
	}
	assert.Equal(t, Stats{Traces: 2, Spans: 2, EvictedTraces: 1}, s.Stats())
}

func TestSpansPerTraceAreBounded(t *testing.T) {
	s := newStore(t, Config{MaxSpansPerTrace: 2})
	r := s.Add([]Span{span(1, 1, 0, "a", "x", 0, 1), span(1, 2, 1, "b", "x", 0, 1), span(1, 3, 1, "c", "x", 0, 1)})
	assert.Equal(t, AddResult{Accepted: 2, Dropped: 1}, r)
	spans, _ := s.Trace(tid(1))
	assert.Len(t, spans, 2)
	r = s.Add([]Span{span(1, 2, 1, "b-again", "x", 0, 1)})
	assert.Equal(t, AddResult{Accepted: 1}, r, "a stored span ID replaces the span even in a full trace")
	assert.Equal(t, int64(1), s.Stats().DroppedSpans)
}

func TestTotalSpansAreBoundedByEvictingOldTraces(t *testing.T) {
	s := newStore(t, Config{MaxSpansPerTrace: 3, MaxSpans: 4})
	s.Add([]Span{span(1, 1, 0, "a", "x", 0, 1), span(1, 2, 1, "b", "x", 0, 1)})
	s.Add([]Span{span(2, 1, 0, "a", "x", 0, 1), span(2, 2, 1, "b", "x", 0, 1)})
	s.Add([]Span{span(2, 3, 1, "c", "x", 0, 1)})
	_, ok := s.Trace(tid(1))
	assert.False(t, ok, "the fifth span evicts the oldest trace")
	assert.Equal(t, 3, s.Stats().Spans)
	// The trace being added to is never evicted for its own spans.
	s2 := newStore(t, Config{MaxSpansPerTrace: 3, MaxSpans: 3})
	assert.Equal(t, AddResult{Accepted: 3}, s2.Add([]Span{span(1, 1, 0, "a", "x", 0, 1), span(1, 2, 1, "b", "x", 0, 1), span(1, 3, 1, "c", "x", 0, 1)}))
	assert.Equal(t, Stats{Traces: 1, Spans: 3}, s2.Stats())
}

func TestDuplicateSpansReplaceAndDoNotCount(t *testing.T) {
	s := newStore(t, Config{})
	// Two pilot replicas emit the same root span (same derived IDs).
	s.Add([]Span{span(1, 1, 0, "endpointslice.change", "weft-pilot", 0, 10)})
	s.Add([]Span{span(1, 1, 0, "endpointslice.change", "weft-pilot", 0, 12)})
	got := s.Traces(Query{})
	require.Len(t, got, 1)
	assert.Equal(t, 1, got[0].SpanCount)
	assert.Equal(t, t0.Add(12*time.Millisecond), got[0].End, "the summary is recomputed after a replacement")
	assert.Equal(t, 1, s.Stats().Spans)
}

func TestMalformedIDsAreRejected(t *testing.T) {
	s := newStore(t, Config{})
	bad := []Span{
		{TraceID: "abc", SpanID: sid(1)},
		{TraceID: tid(0), SpanID: sid(1)},           // all-zero trace ID
		{TraceID: tid(1), SpanID: "00000000000000"}, // short span ID
		{TraceID: tid(1), SpanID: sid(1), ParentSpanID: "xyz"},
		{TraceID: "0000000000000000000000000000000A", SpanID: sid(1)}, // upper case
	}
	assert.Equal(t, AddResult{Rejected: len(bad)}, s.Add(bad))
	assert.Equal(t, Stats{RejectedSpans: int64(len(bad))}, s.Stats())
}

func TestNewRejectsContradictoryBounds(t *testing.T) {
	_, err := New(Config{MaxSpansPerTrace: 10, MaxSpans: 5})
	assert.ErrorContains(t, err, "max spans 5 is below max spans per trace 10")
	_, err = New(Config{MaxTraces: -1})
	assert.ErrorContains(t, err, "must be positive")
	s, err := New(Config{MaxSpansPerTrace: 200000})
	require.NoError(t, err)
	assert.Equal(t, 200000, s.cfg.MaxSpans, "the default total grows to hold one full trace")
}

func TestConcurrentAddAndQuery(t *testing.T) {
	s := newStore(t, Config{MaxTraces: 50})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				s.Add([]Span{span(w*1000+i+1, 1, 0, "x", "svc", i, i+1)})
				s.Traces(Query{Service: "svc", Limit: 5})
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 50, s.Stats().Traces)
	assert.Len(t, s.Traces(Query{}), 50)
}
