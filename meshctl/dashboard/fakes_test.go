package dashboard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// promText writes Envoy-like stats of one sidecar: per destination
// Service (name.namespace), {requests, 503s, ms all took at most}; in
// requests into the workload, in its cluster stats and request metrics.
func promText(workload, ns string, out map[string][3]int, in int) []byte {
	var b strings.Builder
	common := fmt.Sprintf(`workload="%s",workload_namespace="%s"`, workload, ns)
	b.WriteString("# TYPE envoy_cluster_upstream_rq counter\n")
	for svc, v := range out {
		name, sns, _ := strings.Cut(svc, ".")
		tags := fmt.Sprintf(`%s,direction="outbound",destination_port="9080",destination_service_name="%s",destination_service_namespace="%s",envoy_cluster_name="outbound|9080||%s.%s.svc.cluster.local"`, common, name, sns, name, sns)
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq{%s,envoy_response_code=\"200\"} %d\n", tags, v[0]-v[1])
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq{%s,envoy_response_code=\"503\"} %d\n", tags, v[1])
		for _, le := range []int{1, 5, 10, 25, 50, 100, 250} {
			n := 0
			if le >= v[2] {
				n = v[0]
			}
			fmt.Fprintf(&b, "envoy_cluster_upstream_rq_time_bucket{%s,le=\"%d\"} %d\n", tags, le, n)
		}
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq_time_bucket{%s,le=\"+Inf\"} %d\n", tags, v[0])
	}
	if in > 0 {
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq{%s,direction=\"inbound\",destination_port=\"9080\",envoy_cluster_name=\"inbound|9080||\",envoy_response_code=\"200\"} %d\n", common, in)
		// The request metrics: all of it addressed to the workload's
		// Service (reviews-v2: reviews).
		svc, _, _ := strings.Cut(workload, "-v")
		fmt.Fprintf(&b, "envoy_weft_requests_total{reporter=\"destination\",destination_workload=\"%s\",destination_service=\"%s.%s.svc.cluster.local\",response_code=\"200\"} %d\n", workload, svc, ns, in)
	}
	fmt.Fprintf(&b, "envoy_cluster_upstream_rq{%s,envoy_response_code=\"200\",envoy_cluster_name=\"xds-grpc\"} 1\n", common)
	return []byte(b.String())
}

// bookinfoPod is a sidecar of the fake bookinfo: its counters after k
// scrapes.
type bookinfoPod struct {
	name, workload string
	out            func(k int) map[string][3]int
	in             int
}

var bookinfoPods = []bookinfoPod{
	{"productpage-v1-5f7d8b9c4-abcde", "productpage-v1", func(k int) map[string][3]int {
		return map[string][3]int{"details.bookinfo": {100 * k, 0, 5}, "reviews.bookinfo": {100 * k, 10 * k, 50}}
	}, 100},
	{"details-v1-6c7d8e9f0-bcdfg", "details-v1", nil, 100},
	{"reviews-v1-7d8e9f0a1-cdfgh", "reviews-v1", nil, 30},
	{"reviews-v2-8e9f0a1b2-dfghj", "reviews-v2", func(k int) map[string][3]int { return map[string][3]int{"ratings.bookinfo": {35 * k, 0, 10}} }, 35},
	{"reviews-v3-9f0a1b2c3-fghjk", "reviews-v3", func(k int) map[string][3]int { return map[string][3]int{"ratings.bookinfo": {35 * k, k, 10}} }, 35},
	{"ratings-v1-0a1b2c3d4-ghjkl", "ratings-v1", nil, 70},
}

// fakeSource is bookinfo: productpage → details, reviews; reviews-v2, v3
// → ratings; every Pods call is a new scrape whose counters grew by one
// step. FailPod's stats cannot be read.
type fakeSource struct {
	mu      sync.Mutex
	step    int
	FailPod string
	PodsErr error
}

func (f *fakeSource) Pods(_ context.Context, ns string) ([]Pod, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.PodsErr != nil {
		return nil, f.PodsErr
	}
	f.step++
	var out []Pod
	if ns != "" && ns != "bookinfo" {
		return out, nil
	}
	for _, p := range bookinfoPods {
		out = append(out, Pod{Namespace: "bookinfo", Name: p.name, Workload: p.workload})
	}
	return out, nil
}

func (f *fakeSource) Stats(_ context.Context, p Pod) ([]byte, error) {
	f.mu.Lock()
	k := f.step
	f.mu.Unlock()
	if p.Name == f.FailPod {
		return nil, errors.New("read stats: connection refused")
	}
	for _, bp := range bookinfoPods {
		if bp.name == p.Name {
			var out map[string][3]int
			if bp.out != nil {
				out = bp.out(k)
			}
			return promText(bp.workload, "bookinfo", out, bp.in*k), nil
		}
	}
	return nil, fmt.Errorf("no pod %s", p.Name)
}

func (f *fakeSource) Backends(_ context.Context, ns string) ([]Backend, error) {
	svc := func(s, w string) Backend {
		return Backend{Service: Service{"bookinfo", s}, Workload: Workload{"bookinfo", w}}
	}
	return []Backend{svc("productpage", "productpage-v1"), svc("details", "details-v1"), svc("reviews", "reviews-v1"),
		svc("reviews", "reviews-v2"), svc("reviews", "reviews-v3"), svc("ratings", "ratings-v1"), svc("reviews", "reviews-v1")}, nil
}

// clock is a fake clock the test advances.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// twoRefreshes makes a server over src and refreshes it twice, 5s apart,
// so the graph has rates.
func twoRefreshes(t *testing.T, src Source, namespace string) *Server {
	t.Helper()
	clk := &clock{t: t0}
	s := New(Config{Source: src, Namespace: namespace, Now: clk.Now})
	s.Refresh(context.Background())
	clk.Add(5 * time.Second)
	s.Refresh(context.Background())
	return s
}
