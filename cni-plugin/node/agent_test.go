package node

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestAgentFollowsNodes runs the whole agent (informer, loop, sync) inside a
// node netns against a fake API server.
func TestAgentFollowsNodes(t *testing.T) {
	n := testNodeNS(t)
	cfg := testConfig(t)
	self := testNode("n1", "", "172.18.0.2") // no podCIDR yet
	client := fake.NewClientset(self, testNode("n2", "10.244.2.0/24", "172.18.0.3"))
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	require.NoError(t, err)
	metrics, err := NewMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)))
	require.NoError(t, err)
	a, err := NewAgent(cfg, client, metrics)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), testr.New(t)))
	done := make(chan error, 1)
	go func() { done <- n.Do(func(ns.NetNS) error { return a.Run(ctx) }) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, n.Do(func(ns.NetNS) error { return Cleanup(context.Background(), cfg) }))
	}()
	handler := Handler(a.Healthy, promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	conflist := filepath.Join(cfg.CNIConfDir, ConflistName)
	routes := func() string {
		out, err := n.Run("ip", "route", "show", "proto", "87")
		require.NoError(t, err)
		return out
	}

	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(cfg.CNIBinDir, "weft-bridge"))
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "binaries installed before the podCIDR is known")
	assert.NoFileExists(t, conflist)
	code, body := get(t, handler, "/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "waiting for the node's podCIDR")

	self.Spec.PodCIDR, self.Spec.PodCIDRs = "10.244.1.0/24", []string{"10.244.1.0/24"}
	_, err = client.CoreV1().Nodes().Update(ctx, self, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := os.Stat(conflist)
		return err == nil && routes() != ""
	}, 10*time.Second, 50*time.Millisecond)
	assert.Contains(t, routes(), "10.244.2.0/24 via 172.18.0.3")
	code, _ = get(t, handler, "/healthz")
	assert.Equal(t, http.StatusOK, code)
	code, body = get(t, handler, "/metrics")
	assert.Equal(t, http.StatusOK, code)
	for _, m := range []string{"weft_cni_node_routes", "weft_cni_node_sync_duration_seconds_bucket", "weft_cni_node_ipam_allocated_ips"} {
		assert.Contains(t, body, m)
	}

	_, err = client.CoreV1().Nodes().Create(ctx, testNode("n3", "10.244.3.0/24", "172.18.0.4"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, client.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		r := routes()
		return r != "" && !strings.Contains(r, "10.244.2.0/24") && strings.Contains(r, "10.244.3.0/24 via 172.18.0.4")
	}, 10*time.Second, 50*time.Millisecond, "routes follow node deletion and creation")
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, err := io.ReadAll(rec.Result().Body)
	require.NoError(t, err)
	return rec.Code, string(body)
}
