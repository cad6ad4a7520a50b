// Package dashboard is meshctl dashboard: a small web page on loopback
// with the mesh's service graph — workloads and Services, with request
// rate, 5xx share and p99 latency from every sidecar's Envoy stats on
// 15090 — and the latest network-programming traces as timelines (the
// same as meshctl trace). Parsing the stats, computing the graph and its
// layout and laying out timelines are pure functions; the Server refreshes
// them on an interval (rates are counter growth between two scrapes) and
// its handler only serves the latest result as JSON to the embedded page,
// which polls it. Nothing is loaded from outside: the page, its script and
// styles are embedded.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/weftmesh/weft/meshctl/kube"
	"github.com/weftmesh/weft/meshctl/trace"
)

//go:embed web
var web embed.FS

// Config shapes a Server.
type Config struct {
	Source Source
	// Traces is the trace store; nil leaves the traces out.
	Traces trace.Store
	// Namespace is the namespace to show; empty for all.
	Namespace string
	// Interval is the time between refreshes (default 5s); the page polls
	// as often.
	Interval time.Duration
	// TraceLimit is the number of traces shown (default 5).
	TraceLimit int
	// Parallel caps concurrent stats requests (default 8).
	Parallel int
	// Now is the clock of the scrapes (default time.Now).
	Now func() time.Time
}

// Server holds the latest graph and traces.
type Server struct {
	cfg Config

	mu     sync.Mutex
	prev   *Scrape
	graph  Graph
	traces Traces
}

// Traces is the traces part of the page.
type Traces struct {
	// Error says why there are no traces (no collector, store
	// unreachable); the graph works without them.
	Error  string         `json:"error,omitempty"`
	Traces []TimelineView `json:"traces"`
}

// New returns a Server; call Refresh (or Run) before serving.
func New(cfg Config) *Server {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.TraceLimit <= 0 {
		cfg.TraceLimit = 5
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg}
	s.graph = Graph{Namespace: cfg.Namespace, Nodes: []Node{}, Edges: []Edge{}, Warnings: []string{"reading the sidecars' stats…"}}
	s.traces = Traces{Traces: []TimelineView{}}
	return s
}

// Run refreshes now and then every Interval until ctx ends.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		s.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh scrapes every sidecar and reads the latest traces once.
func (s *Server) Refresh(ctx context.Context) {
	g := s.refreshGraph(ctx)
	tr := s.refreshTraces(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.graph, s.traces = g, tr
}

func (s *Server) refreshGraph(ctx context.Context) Graph {
	cur := &Scrape{At: s.cfg.Now()}
	pods, err := s.cfg.Source.Pods(ctx, s.cfg.Namespace)
	if err != nil {
		g := Compute(s.cfg.Namespace, nil, cur)
		g.Warnings = []string{kube.Message(err)}
		return g
	}
	cur.Pods = make([]PodScrape, len(pods))
	sem := make(chan struct{}, s.cfg.Parallel)
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cur.Pods[i] = s.scrape(ctx, p)
		}()
	}
	wg.Wait()
	var warnings []string
	if cur.Backends, err = s.cfg.Source.Backends(ctx, s.cfg.Namespace); err != nil {
		warnings = append(warnings, "Services not shown: "+kube.Message(err))
	}
	s.mu.Lock()
	prev := s.prev
	s.prev = cur
	s.mu.Unlock()
	g := Compute(s.cfg.Namespace, prev, cur)
	g.Warnings = append(g.Warnings, warnings...)
	return g
}

func (s *Server) scrape(ctx context.Context, p Pod) PodScrape {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body, err := s.cfg.Source.Stats(ctx, p)
	if err != nil {
		return PodScrape{Pod: p, Err: err.Error()}
	}
	st, err := ParsePodStats(body)
	if err != nil {
		return PodScrape{Pod: p, Err: err.Error()}
	}
	return PodScrape{Pod: p, Stats: st}
}

func (s *Server) refreshTraces(ctx context.Context) Traces {
	out := Traces{Traces: []TimelineView{}}
	if s.cfg.Traces == nil {
		out.Error = "no trace store"
		return out
	}
	list, err := s.cfg.Traces.List(ctx, trace.Query{Name: trace.SpanChange, Limit: s.cfg.TraceLimit})
	if err != nil {
		out.Error = kube.Message(err)
		return out
	}
	for _, info := range list {
		t, err := s.cfg.Traces.Get(ctx, info.TraceID)
		var nf *trace.NotFoundError
		if errors.As(err, &nf) {
			continue // evicted between list and get
		}
		if err != nil {
			out.Error = kube.Message(err)
			break
		}
		out.Traces = append(out.Traces, View(trace.Build(*t)))
	}
	return out
}

// Handler serves the page and its JSON: GET /api/graph and /api/traces.
// Requests must name a loopback host (no DNS rebinding from a web page).
func (s *Server) Handler() http.Handler {
	static, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the embedded directory exists at build time
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/graph", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		body := struct {
			Graph
			Refresh float64 `json:"refreshSeconds"`
		}{s.graph, s.cfg.Interval.Seconds()}
		s.mu.Unlock()
		writeJSON(w, body)
	})
	mux.HandleFunc("GET /api/traces", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		body := s.traces
		s.mu.Unlock()
		writeJSON(w, body)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			http.Error(w, "meshctl dashboard answers only to 127.0.0.1 and localhost", http.StatusForbidden)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
		mux.ServeHTTP(w, r)
	})
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(b); err != nil {
		return // the page went away
	}
}
