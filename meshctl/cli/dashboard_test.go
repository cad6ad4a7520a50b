package cli

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/meshctl/dashboard"
	"github.com/weftmesh/weft/meshctl/internal/fakekube"
	"github.com/weftmesh/weft/meshctl/trace"
)

// webStats is curl-1's sidecar: 12 requests to web.shop, 3 of them 503.
const webStats = `envoy_cluster_upstream_rq{workload="curl",workload_namespace="shop",direction="outbound",destination_service_name="web",destination_service_namespace="shop",envoy_response_code="200"} 9
envoy_cluster_upstream_rq{workload="curl",workload_namespace="shop",direction="outbound",destination_service_name="web",destination_service_namespace="shop",envoy_response_code="503"} 3
`

func TestDashboardServes(t *testing.T) {
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now})
	for _, pod := range []string{"web-1", "cart-1", "curl-1"} {
		body := ""
		if pod == "curl-1" {
			body = webStats
		}
		c.HTTP.Set("shop/"+pod+":15090"+dashboard.StatsPath, []byte(body))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"dashboard", "-n", "shop", "--port", "0", "--interval", "1s"}, Env{Out: out, Err: errOut, Client: c.Client(), Now: func() time.Time { return now }})
	}()
	var line string
	require.Eventually(t, func() bool {
		line, _, _ = strings.Cut(out.String(), "\n")
		return strings.HasSuffix(out.String(), "\n")
	}, 10*time.Second, 10*time.Millisecond, "stderr: %s", errOut)
	require.True(t, strings.HasPrefix(line, "Weft dashboard of namespace shop: http://127.0.0.1:"), line)
	url := strings.Fields(strings.TrimPrefix(line, "Weft dashboard of namespace shop: "))[0]

	var g dashboard.Graph
	require.Eventually(t, func() bool {
		r, err := http.Get(url + "api/graph")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		g = dashboard.Graph{}
		return json.NewDecoder(r.Body).Decode(&g) == nil && len(g.Nodes) > 0
	}, 10*time.Second, 50*time.Millisecond)
	var ids []string
	for _, n := range g.Nodes {
		ids = append(ids, n.ID)
	}
	assert.Equal(t, []string{"service:shop/web", "workload:shop/cart", "workload:shop/curl", "workload:shop/web"}, ids)

	r, err := http.Get(url + "api/traces")
	require.NoError(t, err)
	var tr dashboard.Traces
	require.NoError(t, json.NewDecoder(r.Body).Decode(&tr))
	r.Body.Close()
	assert.Equal(t, "telemetry collector not installed (no pod app=weft-otel-collector in namespace weft-system): "+trace.InstallHint, tr.Error,
		"the graph works without a collector; the page says how to get traces")

	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code, errOut.String())
		assert.Empty(t, errOut.String())
	case <-time.After(10 * time.Second):
		t.Fatal("meshctl dashboard did not stop on cancel")
	}
	_, err = http.Get(url + "api/graph")
	assert.Error(t, err, "the listener is closed")
}

func TestDashboardUsage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now})
	r := run(t, c, "", "dashboard", "--port", itoa(port))
	oneLineError(t, r, 1, "error: port "+itoa(port)+" on 127.0.0.1 is in use: pick another with --port")

	r = run(t, c, "", "dashboard", "--interval", "10ms")
	oneLineError(t, r, 2, "error: --interval 10ms: want at least 1s")
	r = run(t, c, "", "dashboard", "--port", "70000")
	oneLineError(t, r, 2, "error: --port 70000: want 0 to 65535")
	r = run(t, c, "", "dashboard", "extra")
	oneLineError(t, r, 2, "unknown command \"extra\" for \"meshctl dashboard\"")
}

func itoa(n int) string { return strconv.Itoa(n) }

// syncBuffer is an output the test reads while meshctl writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
