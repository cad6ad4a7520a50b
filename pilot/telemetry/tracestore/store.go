// Package tracestore keeps recent traces in memory and answers the small
// query API that `meshctl trace`, `meshctl dashboard` and the e2e suite
// read (see api.go). The OpenTelemetry Collector has no query API of its
// own, so Weft's collector pod runs this store beside it and the
// collector exports traces to it over OTLP (see otlp.go).
//
// The Store is pure bookkeeping: bounded by a number of traces, a number
// of spans per trace and a total number of spans; when full, the trace
// that arrived first is evicted. It reads no clock and does no I/O.
package tracestore

import (
	"container/list"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Span kinds and status codes as the API spells them: the OTLP enum names
// without their SPAN_KIND_ / STATUS_CODE_ prefixes.
const (
	KindUnspecified = "UNSPECIFIED"
	KindInternal    = "INTERNAL"
	KindServer      = "SERVER"
	KindClient      = "CLIENT"
	KindProducer    = "PRODUCER"
	KindConsumer    = "CONSUMER"

	StatusUnset = "UNSET"
	StatusOK    = "OK"
	StatusError = "ERROR"
)

// Span is one stored span, in the shape the API returns it. Attributes and
// Resource hold every value as a string (see otlp.go); both maps are shared
// between copies and must be treated as read-only.
type Span struct {
	// TraceID is 32 lower-case hex digits; the API gives it once per trace.
	TraceID string `json:"-"`
	// SpanID is 16 lower-case hex digits, ParentSpanID the same or empty
	// for a root span.
	SpanID       string            `json:"spanId"`
	ParentSpanID string            `json:"parentSpanId"`
	Name         string            `json:"name"`
	Service      string            `json:"service"` // the resource's service.name
	Kind         string            `json:"kind"`
	Start        time.Time         `json:"start"`
	End          time.Time         `json:"end"`
	Status       Status            `json:"status"`
	Attributes   map[string]string `json:"attributes"`
	Resource     map[string]string `json:"resource"`
}

// Status is a span's status (OpenTelemetry's Status: code and message).
type Status struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Summary describes one trace in a listing.
type Summary struct {
	TraceID string `json:"traceId"`
	// RootName and Start are the root span's (the span without a parent);
	// before the root has arrived, the earliest span's.
	RootName  string    `json:"rootName"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"` // the latest end of any span
	SpanCount int       `json:"spanCount"`
	Services  []string  `json:"services"` // sorted, without duplicates
}

// Query selects traces for Traces. Empty fields match everything.
type Query struct {
	Name    string // the summary's RootName
	Service string // one of the trace's services
	Limit   int    // at most this many; zero or less: all
}

// Config bounds the store. Zero fields take the defaults below.
type Config struct {
	MaxTraces        int
	MaxSpansPerTrace int
	// MaxSpans bounds the spans of all traces together (the memory); it
	// must be at least MaxSpansPerTrace.
	MaxSpans int
}

// Defaults of Config: about 100 MB of spans at most.
const (
	DefaultMaxTraces        = 1000
	DefaultMaxSpansPerTrace = 1000
	DefaultMaxSpans         = 100000
)

// AddResult counts what Add did with the spans it was given.
type AddResult struct {
	Accepted int // stored (a span whose ID was already stored replaces it)
	Dropped  int // the trace already held MaxSpansPerTrace spans
	Rejected int // malformed trace or span ID
}

// Stats describe the store's content and what it had to throw away.
type Stats struct {
	Traces        int   `json:"traces"`
	Spans         int   `json:"spans"`
	EvictedTraces int64 `json:"evictedTraces"`
	DroppedSpans  int64 `json:"droppedSpans"`
	RejectedSpans int64 `json:"rejectedSpans"`
}

// Store holds the most recent traces. It is safe for concurrent use.
type Store struct {
	cfg Config

	mu     sync.Mutex
	traces map[string]*entry
	order  *list.List // *entry, first arrived first
	stats  Stats
}

// entry is one trace: its spans in arrival order and a cached summary.
type entry struct {
	id      string
	spans   []Span
	byID    map[string]int // span ID → index in spans
	elem    *list.Element
	summary *Summary // nil when spans changed since it was computed
}

var (
	traceIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)
	spanIDPattern  = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// ValidTraceID reports whether id is a trace ID as the store keeps them:
// 32 lower-case hex digits, not all zero (W3C trace context).
func ValidTraceID(id string) bool {
	return traceIDPattern.MatchString(id) && strings.Trim(id, "0") != ""
}

func validSpanID(id string) bool {
	return spanIDPattern.MatchString(id) && strings.Trim(id, "0") != ""
}

// New returns an empty store; it rejects bounds that contradict each other.
func New(cfg Config) (*Store, error) {
	if cfg.MaxTraces == 0 {
		cfg.MaxTraces = DefaultMaxTraces
	}
	if cfg.MaxSpansPerTrace == 0 {
		cfg.MaxSpansPerTrace = DefaultMaxSpansPerTrace
	}
	if cfg.MaxSpans == 0 {
		cfg.MaxSpans = max(DefaultMaxSpans, cfg.MaxSpansPerTrace)
	}
	if cfg.MaxTraces < 1 || cfg.MaxSpansPerTrace < 1 || cfg.MaxSpans < 1 {
		return nil, fmt.Errorf("trace store bounds must be positive: %+v", cfg)
	}
	if cfg.MaxSpans < cfg.MaxSpansPerTrace {
		return nil, fmt.Errorf("trace store: max spans %d is below max spans per trace %d", cfg.MaxSpans, cfg.MaxSpansPerTrace)
	}
	return &Store{cfg: cfg, traces: map[string]*entry{}, order: list.New()}, nil
}

// Add stores spans. A span whose trace is new may evict the traces that
// arrived first; a span of a full trace is dropped; a span with the ID of
// a stored one replaces it (a collector's retry, or the same root span from
// two pilot replicas).
func (s *Store) Add(spans []Span) AddResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	var r AddResult
	for _, sp := range spans {
		if !ValidTraceID(sp.TraceID) || !validSpanID(sp.SpanID) || (sp.ParentSpanID != "" && !validSpanID(sp.ParentSpanID)) {
			r.Rejected++
			continue
		}
		if s.add(sp) {
			r.Accepted++
		} else {
			r.Dropped++
		}
	}
	s.stats.DroppedSpans += int64(r.Dropped)
	s.stats.RejectedSpans += int64(r.Rejected)
	return r
}

// add stores one valid span and reports whether it was kept.
func (s *Store) add(sp Span) bool {
	if sp.Attributes == nil {
		sp.Attributes = map[string]string{}
	}
	if sp.Resource == nil {
		sp.Resource = map[string]string{}
	}
	e, ok := s.traces[sp.TraceID]
	if ok {
		if i, dup := e.byID[sp.SpanID]; dup {
			e.spans[i], e.summary = sp, nil
			return true
		}
		if len(e.spans) >= s.cfg.MaxSpansPerTrace {
			return false
		}
	} else {
		for len(s.traces) >= s.cfg.MaxTraces {
			s.evictOldest()
		}
		e = &entry{id: sp.TraceID, byID: map[string]int{}}
		e.elem = s.order.PushBack(e)
		s.traces[sp.TraceID] = e
	}
	e.byID[sp.SpanID] = len(e.spans)
	e.spans = append(e.spans, sp)
	e.summary = nil
	s.stats.Spans++
	for s.stats.Spans > s.cfg.MaxSpans && s.order.Front().Value.(*entry) != e {
		s.evictOldest()
	}
	return true
}

func (s *Store) evictOldest() {
	e := s.order.Remove(s.order.Front()).(*entry)
	delete(s.traces, e.id)
	s.stats.Spans -= len(e.spans)
	s.stats.EvictedTraces++
}

// Trace returns the spans of one trace sorted by start time (then span
// ID), or false when the store does not hold it.
func (s *Store) Trace(id string) ([]Span, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.traces[id]
	if !ok {
		return nil, false
	}
	out := slices.Clone(e.spans)
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].SpanID < out[j].SpanID
	})
	return out, true
}

// Traces lists the summaries of the traces q selects, newest (latest
// start) first.
func (s *Store) Traces(q Query) []Summary {
	s.mu.Lock()
	out := []Summary{}
	for _, e := range s.traces {
		sum := e.summarize()
		if q.Name != "" && sum.RootName != q.Name {
			continue
		}
		if q.Service != "" && !slices.Contains(sum.Services, q.Service) {
			continue
		}
		out = append(out, *sum)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.After(out[j].Start)
		}
		return out[i].TraceID < out[j].TraceID
	})
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out
}

// Stats returns the current counts.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Traces = len(s.traces)
	return st
}

// summarize computes (and caches) the trace's summary.
func (e *entry) summarize() *Summary {
	if e.summary != nil {
		return e.summary
	}
	var root, earliest *Span
	services := map[string]bool{}
	sum := &Summary{TraceID: e.id, SpanCount: len(e.spans), Services: []string{}}
	for i := range e.spans {
		sp := &e.spans[i]
		if earliest == nil || sp.Start.Before(earliest.Start) {
			earliest = sp
		}
		if sp.ParentSpanID == "" && (root == nil || sp.Start.Before(root.Start)) {
			root = sp
		}
		if sp.End.After(sum.End) {
			sum.End = sp.End
		}
		if sp.Service != "" && !services[sp.Service] {
			services[sp.Service] = true
			sum.Services = append(sum.Services, sp.Service)
		}
	}
	if root == nil {
		root = earliest
	}
	sum.RootName, sum.Start = root.Name, root.Start
	slices.Sort(sum.Services)
	e.summary = sum
	return sum
}
