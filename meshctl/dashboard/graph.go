package dashboard

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Pod is a meshed pod whose sidecar is scraped.
type Pod struct {
	Namespace, Name string
	// Workload is the pod's workload (envoystats.WorkloadName).
	Workload string
}

// Backend says that a Service's endpoints include a pod of a workload
// (from the Service's EndpointSlices).
type Backend struct {
	Service  Service
	Workload Workload
}

// Workload is a Deployment, StatefulSet, DaemonSet... by the name its pods
// carry.
type Workload struct{ Namespace, Name string }

// Scrape is one round of reading every sidecar.
type Scrape struct {
	At   time.Time
	Pods []PodScrape
	// Backends link Services to the workloads behind them.
	Backends []Backend
}

// PodScrape is one sidecar's stats, or why they could not be read.
type PodScrape struct {
	Pod
	Stats *PodStats
	Err   string
}

// Graph is the service graph: workloads and Services as nodes, traffic
// from a workload to a Service and, dashed, from a Service to the
// workloads behind it as edges, laid out left to right.
type Graph struct {
	// Namespace is the namespace shown; empty for every meshed namespace.
	Namespace string    `json:"namespace"`
	At        time.Time `json:"at"`
	// Window is the time between the two scrapes the rates come from; 0
	// until the second scrape.
	Window   float64  `json:"windowSeconds"`
	Nodes    []Node   `json:"nodes"`
	Edges    []Edge   `json:"edges"`
	Warnings []string `json:"warnings"`
	// Width and Height are the drawing's size (Layout).
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
}

// Node kinds.
const (
	KindWorkload = "workload"
	KindService  = "service"
)

// Edge kinds: measured traffic, or a Service's backend.
const (
	EdgeTraffic = "traffic"
	EdgeBackend = "backend"
)

// Node is a workload or a Service.
type Node struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Pods is the number of the workload's sidecars scraped.
	Pods int `json:"pods,omitempty"`
	// Inbound is the traffic the workload's sidecars received.
	Inbound *Traffic `json:"inbound,omitempty"`
	// X, Y are the top-left corner in the drawing (Layout).
	X float64 `json:"x"`
	Y float64 `json:"y"`
	// Column is the node's layer (Layout).
	Column int `json:"column"`
}

// Edge is traffic from a workload to a Service (the callers' cluster
// stats), or a Service's backend, with the traffic its sidecars served for
// that Service where their namespace records request metrics.
type Edge struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	Kind    string   `json:"kind"`
	Traffic *Traffic `json:"traffic,omitempty"`
}

// Traffic is what sidecars counted on an edge or into a workload.
type Traffic struct {
	// Total is the requests since the sidecars started.
	Total float64 `json:"total"`
	// RPS, ErrorRate (5xx share, 0..1) and P99 (ms) are over the window
	// between the last two scrapes; Measured is false until there are two.
	Measured  bool     `json:"measured"`
	RPS       float64  `json:"rps"`
	ErrorRate float64  `json:"errorRate"`
	P99       *float64 `json:"p99Ms,omitempty"`
	// Label is the edge's caption: "2.4 rps · 8.3% 5xx · p99 12ms", or
	// "96 requests so far" until measured.
	Label string `json:"label"`
}

// WorkloadID and ServiceID name graph nodes.
func WorkloadID(ns, name string) string { return "workload:" + ns + "/" + name }

// ServiceID names a Service node.
func ServiceID(s Service) string { return "service:" + s.Namespace + "/" + s.Name }

// Compute builds the graph of cur, with rates from the counters' growth
// since prev (nil on the first scrape). A sidecar missing from prev has no
// rate yet: its counters may predate prev, so counting them whole would
// overstate the rate.
func Compute(namespace string, prev, cur *Scrape) Graph {
	g := Graph{Namespace: namespace, At: cur.At, Nodes: []Node{}, Edges: []Edge{}, Warnings: []string{}}
	var window time.Duration
	before := map[string]*PodStats{}
	if prev != nil && cur.At.After(prev.At) {
		window = cur.At.Sub(prev.At)
		g.Window = window.Seconds()
		for _, p := range prev.Pods {
			if p.Stats != nil {
				before[p.Namespace+"/"+p.Name] = p.Stats
			}
		}
	}
	type agg struct {
		total, delta Counts
		measured     bool
	}
	nodes := map[string]*Node{}
	edges := map[[2]string]*agg{}
	served := map[Backend]*agg{} // from the request metrics
	inbound := map[string]*agg{}
	// count adds a sidecar's counts (and, with its previous scrape, their
	// growth) to a.
	count := func(a *agg, c Counts, prev *Counts, hasOld bool) {
		a.total = a.total.Add(c)
		if hasOld {
			p := Counts{} // a destination new since prev started at zero
			if prev != nil {
				p = *prev
			}
			a.delta, a.measured = a.delta.Add(c.Sub(p)), true
		}
	}
	addNode := func(n Node) *Node {
		if have, ok := nodes[n.ID]; ok {
			return have
		}
		nodes[n.ID] = &n
		return nodes[n.ID]
	}
	var failed []string
	for _, p := range cur.Pods {
		wl := Workload{Namespace: p.Namespace, Name: p.Workload}
		if p.Stats != nil && p.Stats.Workload != "" {
			wl = Workload{Namespace: p.Stats.Namespace, Name: p.Stats.Workload}
		}
		n := addNode(Node{ID: WorkloadID(wl.Namespace, wl.Name), Kind: KindWorkload, Namespace: wl.Namespace, Name: wl.Name})
		n.Pods++
		if p.Stats == nil {
			failed = append(failed, p.Namespace+"/"+p.Name+": "+p.Err)
			continue
		}
		old, hasOld := before[p.Namespace+"/"+p.Name]
		for svc, c := range p.Stats.Outbound {
			if c.Requests == 0 {
				continue
			}
			key := [2]string{n.ID, ServiceID(svc)}
			a := edges[key]
			if a == nil {
				a = &agg{}
				edges[key] = a
				addNode(Node{ID: ServiceID(svc), Kind: KindService, Namespace: svc.Namespace, Name: svc.Name})
			}
			var prevC *Counts
			if hasOld {
				prevC = old.Outbound[svc]
			}
			count(a, *c, prevC, hasOld)
		}
		for svc, c := range p.Stats.Served {
			key := Backend{Service: svc, Workload: wl}
			if served[key] == nil {
				served[key] = &agg{}
			}
			var prevC *Counts
			if hasOld {
				prevC = old.Served[svc]
			}
			count(served[key], *c, prevC, hasOld)
		}
		a := inbound[n.ID]
		if a == nil {
			a = &agg{}
			inbound[n.ID] = a
		}
		var prevIn *Counts
		if hasOld {
			prevIn = &old.Inbound
		}
		count(a, p.Stats.Inbound, prevIn, hasOld)
	}
	traffic := func(a *agg) *Traffic {
		t := &Traffic{Total: a.total.Requests, Measured: a.measured && window > 0}
		if t.Measured {
			t.RPS = a.delta.Requests / window.Seconds()
			// Envoy updates histograms at its stats flush (5s), counters at
			// once: a window without requests may still see latencies of
			// the previous one, so p99 is shown only with requests.
			if a.delta.Requests > 0 {
				t.ErrorRate = a.delta.Errors / a.delta.Requests
				if q, ok := a.delta.Quantile(0.99); ok {
					t.P99 = &q
				}
			}
		}
		t.Label = t.caption()
		// Rounded: JSON readers need no more, and goldens stay stable
		// where the compiler fuses multiply-adds.
		t.RPS, t.ErrorRate = round(t.RPS, 4), round(t.ErrorRate, 4)
		if t.P99 != nil {
			q := round(*t.P99, 3)
			t.P99 = &q
		}
		return t
	}
	for id, a := range inbound {
		if a.total.Requests > 0 {
			nodes[id].Inbound = traffic(a)
		}
	}
	for key, a := range edges {
		g.Edges = append(g.Edges, Edge{From: key[0], To: key[1], Kind: EdgeTraffic, Traffic: traffic(a)})
	}
	// Backend edges: a Service's EndpointSlices list the workload, or the
	// workload's sidecars served requests addressed to the Service. They
	// carry the served traffic where the request metrics count it, so a
	// Service's split between workloads (reviews v1, v2, v3) shows.
	backends := slices.Clone(cur.Backends)
	for b := range served {
		backends = append(backends, b)
	}
	seen := map[[2]string]bool{}
	for _, b := range backends {
		from, to := ServiceID(b.Service), WorkloadID(b.Workload.Namespace, b.Workload.Name)
		if nodes[to] == nil || seen[[2]string{from, to}] {
			continue // only meshed workloads are drawn
		}
		if nodes[from] == nil && namespace != "" && b.Service.Namespace != namespace {
			continue
		}
		seen[[2]string{from, to}] = true
		addNode(Node{ID: from, Kind: KindService, Namespace: b.Service.Namespace, Name: b.Service.Name})
		e := Edge{From: from, To: to, Kind: EdgeBackend}
		if a := served[b]; a != nil && a.total.Requests > 0 {
			e.Traffic = traffic(a)
		}
		g.Edges = append(g.Edges, e)
	}
	for _, n := range nodes {
		g.Nodes = append(g.Nodes, *n)
	}
	slices.SortFunc(g.Nodes, func(a, b Node) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(g.Edges, func(a, b Edge) int { return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To)) })
	slices.Sort(failed)
	if len(failed) > 0 {
		g.Warnings = append(g.Warnings, fmt.Sprintf("%d of %d sidecars could not be read: %s", len(failed), len(cur.Pods), joinFirst(failed, 3)))
	}
	if len(cur.Pods) == 0 {
		where := "namespace " + namespace
		if namespace == "" {
			where = "any namespace"
		}
		g.Warnings = append(g.Warnings, "no meshed pods in "+where+" (label a namespace weft-injection=enabled and restart its pods)")
	}
	Layout(&g)
	return g
}

func joinFirst(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, "; ")
	}
	return strings.Join(s[:n], "; ") + fmt.Sprintf("; and %d more", len(s)-n)
}

// caption is the edge label: rate, errors and p99 once measured, the total
// before.
func (t Traffic) caption() string {
	if !t.Measured {
		return strconv.FormatFloat(t.Total, 'f', 0, 64) + " requests so far"
	}
	s := formatRate(t.RPS) + " rps · " + strconv.FormatFloat(t.ErrorRate*100, 'f', 1, 64) + "% 5xx"
	if t.P99 != nil {
		s += " · p99 " + formatMs(*t.P99)
	}
	return s
}

func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}

func formatRate(r float64) string {
	switch {
	case r < 1:
		return strconv.FormatFloat(r, 'f', 2, 64)
	case r < 10:
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return strconv.FormatFloat(r, 'f', 0, 64)
}
