package dashboard

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/meshctl/internal/golden"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func podScrape(t *testing.T, ns, name, file string) PodScrape {
	t.Helper()
	st, err := ParsePodStats(readProm(t, file))
	require.NoError(t, err)
	return PodScrape{Pod: Pod{Namespace: ns, Name: name, Workload: strings.Split(name, "-")[0]}, Stats: st}
}

func realScrapes(t *testing.T) (*Scrape, *Scrape) {
	backends := []Backend{{Service: Service{"dash-helper", "httpbin"}, Workload: Workload{"dash-helper", "httpbin"}}}
	first := &Scrape{At: t0, Backends: backends, Pods: []PodScrape{
		podScrape(t, "dash-helper", "curl-7444ff85b8-4xqxb", "curl-1.prom"),
		podScrape(t, "dash-helper", "httpbin-5bbd8f88d9-gfjtb", "httpbin-1.prom"),
	}}
	second := &Scrape{At: t0.Add(10 * time.Second), Backends: backends, Pods: []PodScrape{
		podScrape(t, "dash-helper", "curl-7444ff85b8-4xqxb", "curl-2.prom"),
		podScrape(t, "dash-helper", "httpbin-5bbd8f88d9-gfjtb", "httpbin-2.prom"),
		{Pod: Pod{Namespace: "dash-helper", Name: "httpbin-5bbd8f88d9-wgkcp", Workload: "httpbin"}, Err: "read stats: connection refused"},
	}}
	return first, second
}

func TestComputeRealScrapes(t *testing.T) {
	first, second := realScrapes(t)

	g := Compute("dash-helper", nil, first)
	require.Len(t, g.Edges, 2)
	tr := g.Edges[1].Traffic
	require.NotNil(t, tr, "%+v", g.Edges)
	assert.False(t, tr.Measured, "one scrape has no rates")
	assert.Equal(t, "60 requests so far", tr.Label)

	g = Compute("dash-helper", first, second)
	assert.Equal(t, 10.0, g.Window)
	var call, backs *Edge
	for i, e := range g.Edges {
		switch e.Kind {
		case EdgeTraffic:
			call = &g.Edges[i]
		case EdgeBackend:
			backs = &g.Edges[i]
		}
	}
	require.NotNil(t, call)
	require.NotNil(t, backs)
	assert.Equal(t, WorkloadID("dash-helper", "curl"), call.From)
	assert.Equal(t, ServiceID(Service{"dash-helper", "httpbin"}), call.To)
	assert.Equal(t, ServiceID(Service{"dash-helper", "httpbin"}), backs.From)
	assert.Equal(t, WorkloadID("dash-helper", "httpbin"), backs.To)

	tr = call.Traffic
	assert.True(t, tr.Measured)
	assert.InDelta(t, 3.6, tr.RPS, 1e-9, "36 requests in 10s")
	assert.InDelta(t, 6.0/36, tr.ErrorRate, 1e-4, "6 of them 500s")
	require.NotNil(t, tr.P99)
	assert.Equal(t, 96.0, tr.Total)
	assert.True(t, strings.HasPrefix(tr.Label, "3.6 rps · 16.7% 5xx · p99 "), tr.Label)

	var httpbin Node
	for _, n := range g.Nodes {
		if n.ID == WorkloadID("dash-helper", "httpbin") {
			httpbin = n
		}
	}
	assert.Equal(t, 2, httpbin.Pods, "the unreadable sidecar still counts as a pod")
	require.NotNil(t, httpbin.Inbound)
	assert.InDelta(t, 1.0, httpbin.Inbound.RPS, 1e-9, "10 requests reached this pod")
	assert.Equal(t, []string{"1 of 3 sidecars could not be read: dash-helper/httpbin-5bbd8f88d9-wgkcp: read stats: connection refused"}, g.Warnings)

	b, err := json.MarshalIndent(g, "", "  ")
	require.NoError(t, err)
	golden.Check(t, "graph-real.json", append(b, '\n'))
}

func TestComputeNewPodHasNoRate(t *testing.T) {
	first, second := realScrapes(t)
	first.Pods = first.Pods[1:] // curl was not there yet
	g := Compute("", first, second)
	for _, e := range g.Edges {
		if e.Kind == EdgeTraffic {
			assert.False(t, e.Traffic.Measured, "curl's counters may predate the first scrape")
		}
	}
}

func TestComputeNoPods(t *testing.T) {
	g := Compute("shop", nil, &Scrape{At: t0})
	assert.Equal(t, []string{"no meshed pods in namespace shop (label a namespace weft-injection=enabled and restart its pods)"}, g.Warnings)
	assert.NotNil(t, g.Nodes)
	assert.NotNil(t, g.Edges)
}

func TestLayoutBookinfo(t *testing.T) {
	g := twoRefreshes(t, &fakeSource{}, "bookinfo").graph
	col := map[string]int{}
	for _, n := range g.Nodes {
		col[n.Name+"/"+n.Kind] = n.Column
	}
	assert.Equal(t, map[string]int{
		"productpage/service": 0, "productpage-v1/workload": 1,
		"details/service": 2, "reviews/service": 2,
		"details-v1/workload": 3, "reviews-v1/workload": 3, "reviews-v2/workload": 3, "reviews-v3/workload": 3,
		"ratings/service": 4, "ratings-v1/workload": 5,
	}, col, "callers left of the Services they call, Services left of their workloads")
	seen := map[[2]float64]string{}
	for _, n := range g.Nodes {
		p := [2]float64{n.X, n.Y}
		assert.Empty(t, seen[p], "%s and %s overlap", seen[p], n.ID)
		seen[p] = n.ID
		assert.LessOrEqual(t, n.X+NodeWidth, g.Width)
		assert.LessOrEqual(t, n.Y+NodeHeight, g.Height)
	}
	b, err := json.MarshalIndent(g, "", "  ")
	require.NoError(t, err)
	golden.Check(t, "graph-bookinfo.json", append(b, '\n'))
}

func TestLayoutCycle(t *testing.T) {
	g := Graph{Nodes: []Node{{ID: "a"}, {ID: "b"}, {ID: "c"}}, Edges: []Edge{{From: "a", To: "b"}, {From: "b", To: "c"}, {From: "c", To: "b"}, {From: "a", To: "a"}}}
	Layout(&g)
	assert.Equal(t, []int{0, 1, 2}, []int{g.Nodes[0].Column, g.Nodes[1].Column, g.Nodes[2].Column})
	empty := Graph{}
	Layout(&empty)
	assert.Equal(t, float64(2*margin), empty.Width)
}

// bookinfoReviews is the reviews pods' real scrapes n (1: after 60
// productpage requests, 2: after 90), their request metrics on.
func bookinfoReviews(t *testing.T, at time.Time, n int) *Scrape {
	s := &Scrape{At: at}
	for _, v := range []string{"v1", "v2", "v3"} {
		s.Pods = append(s.Pods, podScrape(t, "dash-bookinfo", "reviews-"+v+"-0", "reviews-"+v+"-"+strconv.Itoa(n)+".prom"))
		s.Backends = append(s.Backends, Backend{Service: Service{"dash-bookinfo", "reviews"}, Workload: Workload{"dash-bookinfo", "reviews-" + v}})
	}
	return s
}

// The reviews Service's edges to its versions carry what each served.
func TestComputeServedSplit(t *testing.T) {
	first, second := bookinfoReviews(t, t0, 1), bookinfoReviews(t, t0.Add(10*time.Second), 2)
	labels := func(g Graph) map[string]*Traffic {
		out := map[string]*Traffic{}
		for _, e := range g.Edges {
			if e.Kind == EdgeBackend { // the others: v2 and v3 call ratings
				require.Equal(t, ServiceID(Service{"dash-bookinfo", "reviews"}), e.From)
				out[e.To] = e.Traffic
			}
		}
		return out
	}
	wl := func(v string) string { return WorkloadID("dash-bookinfo", "reviews-"+v) }

	got := labels(Compute("dash-bookinfo", nil, first))
	require.Len(t, got, 3)
	for v, n := range map[string]string{"v1": "23", "v2": "22", "v3": "15"} {
		require.NotNil(t, got[wl(v)], v)
		assert.Equal(t, n+" requests so far", got[wl(v)].Label, v)
	}

	got = labels(Compute("dash-bookinfo", first, second))
	for v, rps := range map[string]float64{"v1": 1.2, "v2": 0.9, "v3": 0.9} {
		tr := got[wl(v)]
		require.NotNil(t, tr, v)
		assert.True(t, tr.Measured, v)
		assert.InDelta(t, rps, tr.RPS, 1e-9, v)
		assert.Zero(t, tr.ErrorRate, v)
		assert.NotNil(t, tr.P99, v)
	}

	// Without EndpointSlices (a Service the dashboard did not list), the
	// served traffic alone draws the edges.
	second.Backends = nil
	assert.Len(t, labels(Compute("dash-bookinfo", first, second)), 3)
}
