// Package fakestore is a fake trace store for meshctl's unit tests: an
// http.Handler that serves the store's HTTP JSON API (GET /api/traces,
// /api/traces/<id>, /healthz) from traces in memory, with Fixture's
// traces as the usual content — a network-programming trace of an
// EndpointSlice change (3 node syncs, 5 proxy pushes, one NACK), a request
// trace through two sidecars, and an older delete whose root span is not
// in the store.
package fakestore

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weftmesh/weft/meshctl/trace"
)

//go:embed traces.json
var fixture []byte

// Fixture IDs.
const (
	NetprogID = "4bf92f3577b34da6a3ce929d0e0e4736"
	RequestID = "0af7651916cd43dd8448eb211c80319c"
	DeleteID  = "9f86d081884c7d659a2feaa0c55ad015"
)

// Fixture returns the fixture traces.
func Fixture() []trace.Trace {
	var out []trace.Trace
	if err := json.Unmarshal(fixture, &out); err != nil {
		panic(fmt.Sprintf("fakestore fixture: %v", err))
	}
	return out
}

// Store serves traces. Status, when set, is the answer to every API
// request (a broken store); Requests records the request URIs.
type Store struct {
	mu       sync.Mutex
	traces   []trace.Trace
	Status   int
	Requests []string
}

// New returns a store holding traces.
func New(traces ...trace.Trace) *Store { return &Store{traces: traces} }

// ServeHTTP implements the store's API.
func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Requests = append(s.Requests, r.URL.RequestURI())
	if r.URL.Path == "/healthz" {
		fmt.Fprintln(w, "ok")
		return
	}
	if s.Status != 0 {
		answer(w, s.Status, map[string]string{"error": "fake store failure"})
		return
	}
	if r.URL.Path == "/api/traces" {
		s.list(w, r)
		return
	}
	if id, ok := strings.CutPrefix(r.URL.Path, "/api/traces/"); ok {
		for _, t := range s.traces {
			if t.TraceID == id {
				answer(w, http.StatusOK, t)
				return
			}
		}
		answer(w, http.StatusNotFound, map[string]string{"error": "trace " + id + " not found"})
		return
	}
	answer(w, http.StatusNotFound, map[string]string{"error": "no route " + r.URL.Path})
}

func (s *Store) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			answer(w, http.StatusBadRequest, map[string]string{"error": "bad limit " + v})
			return
		}
		limit = n
	}
	out := []trace.TraceInfo{}
	for _, t := range s.traces {
		info := Info(t)
		if n := q.Get("name"); n != "" && info.RootName != n {
			continue
		}
		if svc := q.Get("service"); svc != "" && !slices.Contains(info.Services, svc) {
			continue
		}
		out = append(out, info)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	if len(out) > limit {
		out = out[:limit]
	}
	answer(w, http.StatusOK, map[string]any{"traces": out})
}

// Info is the list entry of t: the root is the earliest span without a
// parent in the trace.
func Info(t trace.Trace) trace.TraceInfo {
	info := trace.TraceInfo{TraceID: t.TraceID, SpanCount: len(t.Spans), Services: []string{}}
	ids := map[string]bool{}
	for _, sp := range t.Spans {
		ids[sp.SpanID] = true
	}
	var root time.Time
	for i, sp := range t.Spans {
		if i == 0 || sp.Start.Before(info.Start) {
			info.Start = sp.Start
		}
		if sp.End.After(info.End) {
			info.End = sp.End
		}
		if !slices.Contains(info.Services, sp.Service) {
			info.Services = append(info.Services, sp.Service)
		}
		if !ids[sp.ParentSpanID] && (info.RootName == "" || sp.Start.Before(root)) {
			info.RootName, root = sp.Name, sp.Start
		}
	}
	sort.Strings(info.Services)
	return info
}

func answer(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		panic(err)
	}
}
