package envoystats_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftmesh/weft/pilot/generator/envoytest"
	"github.com/weftmesh/weft/pilot/telemetry/envoystats"
)

func TestWorkloadName(t *testing.T) {
	for pod, want := range map[string]string{
		"reviews-v1-5d8f7c9b4-x2x7q": "reviews-v1", // Deployment
		"httpbin-7b5c6f4d8b-k9l2m":   "httpbin",
		"weft-cni-node-x7k2p":        "weft-cni-node", // DaemonSet
		"web-0":                      "web",           // StatefulSet
		"db-12":                      "db",
		"standalone":                 "standalone",
		"curl":                       "curl",
		"app-aeiou":                  "app-aeiou", // vowels never appear in generated suffixes
	} {
		assert.Equal(t, want, envoystats.WorkloadName(pod), pod)
	}
}

func TestStatsConfigValidates(t *testing.T) {
	require.NoError(t, envoystats.StatsConfig("w", "ns", "").ValidateAll())
}

// TestStatsTagsWithEnvoy runs Envoy with the stats config and clusters
// named as pilot names them, and reads the labels off /stats/prometheus:
// the regular expressions only mean something to Envoy's tag extractor.
func TestStatsTagsWithEnvoy(t *testing.T) {
	bin, ok := envoytest.Binary()
	if !ok {
		t.Skip("no envoy binary (make envoy)")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := lis.Addr().(*net.TCPAddr).Port
	require.NoError(t, lis.Close())

	cluster := func(name string) *clusterv3.Cluster {
		return &clusterv3.Cluster{Name: name, ConnectTimeout: durationpb.New(time.Second),
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}}
	}
	b := &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: "productpage-v1-5d8f7c9b4-x2x7q.shop", Cluster: "productpage.shop"},
		Admin: &bootstrapv3.Admin{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
		}}}},
		StatsConfig: envoystats.StatsConfig("productpage-v1", "shop", "cluster.local"),
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{Clusters: []*clusterv3.Cluster{
			cluster("outbound|9080||reviews.shop.svc.cluster.local"),
			cluster("outbound|9080|v2|reviews.shop.svc.cluster.local"),
			cluster("inbound|9080||"),
		}},
	}
	data, err := protojson.Marshal(b)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "bootstrap.json")
	require.NoError(t, os.WriteFile(path, data, 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-c", path, "--use-dynamic-base-id", "-l", "warning")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() { cancel(); <-exited }()

	var body string
	deadline := time.Now().Add(20 * time.Second)
	for body == "" {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/stats/prometheus", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			body = string(b)
			break
		}
		select {
		case <-exited:
			t.Fatalf("envoy exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("envoy did not come up: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Label order is Envoy's business; compare label sets.
	labelSet := func(line string) string {
		inner := strings.TrimSuffix(strings.TrimPrefix(line, "envoy_cluster_upstream_rq_total{"), "}")
		parts := strings.Split(inner, `",`)
		for i := range parts {
			parts[i] = strings.TrimSuffix(parts[i], `"`)
		}
		slices.Sort(parts)
		return strings.Join(parts, " ")
	}
	lines := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "envoy_cluster_upstream_rq_total{") {
			lines[labelSet(strings.Fields(sc.Text())[0])] = true
		}
	}
	want := []string{
		`envoy_cluster_upstream_rq_total{workload="productpage-v1",workload_namespace="shop",direction="outbound",destination_port="9080",destination_service_name="reviews",destination_service_namespace="shop",envoy_cluster_name="outbound|9080||reviews.shop.svc.cluster.local"}`,
		`envoy_cluster_upstream_rq_total{workload="productpage-v1",workload_namespace="shop",direction="outbound",destination_port="9080",destination_subset="v2",destination_service_name="reviews",destination_service_namespace="shop",envoy_cluster_name="outbound|9080|v2|reviews.shop.svc.cluster.local"}`,
		`envoy_cluster_upstream_rq_total{workload="productpage-v1",workload_namespace="shop",direction="inbound",destination_port="9080",envoy_cluster_name="inbound|9080||"}`,
	}
	for _, w := range want {
		assert.True(t, lines[labelSet(w)], "missing %s\nhave: %v", w, lines)
	}
}
