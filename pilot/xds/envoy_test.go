package xds

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/generator/envoytest"
)

// TestEnvoy runs a real Envoy against the server over mTLS, with its
// certificates from a test SDS server on a Unix socket, as the agent
// provides them: Envoy must accept every generated resource (all types
// SYNCED, no listener or cluster left warming, readiness answering 200),
// report a rejected push as a NACK with its own error message, and recover.
func TestEnvoy(t *testing.T) {
	bin, ok := envoytest.Binary()
	if !ok {
		t.Skip("no envoy binary (make envoy)")
	}
	for _, delta := range []bool{false, true} {
		t.Run(fmt.Sprintf("delta=%v", delta), func(t *testing.T) { runEnvoy(t, bin, delta) })
	}
}

// envoyNode is productpage-1's Envoy, connected to pilot.
const envoyNode = "productpage-1.shop"

// startEnvoyWithPilot starts pilot (mTLS, configured by mutate) and a real
// Envoy for envoyNode with the agent's bootstrap, waits until Envoy has
// every type and no listener or cluster warms, and returns the harness,
// Envoy's admin URL and the readiness port.
func startEnvoyWithPilot(t *testing.T, bin string, delta bool, mutate func(*Config)) (*harness, string, uint32) {
	ports := freePorts(t, 4)
	h, ca := tlsHarnessWith(t, func(c *Config) {
		c.Generator.OutboundPort, c.Generator.InboundPort, c.Generator.ReadinessPort = ports[0], ports[1], ports[2]
		// This bootstrap has no static readiness listener, so pilot's
		// generated one is tested here.
		c.Generator.ReadinessListener = true
		if mutate != nil {
			mutate(c)
		}
	})
	svid, err := ca.Issue(spiffe(ns, "productpage"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sock := startSDS(t, filepath.Join(dir, "sds.sock"), envoyNode, svid, ca)
	_, xdsPort, _ := net.SplitHostPort(h.addr)
	boot := agentBootstrap(envoyNode, xdsPort, sock, ports[3], delta)
	admin := fmt.Sprintf("http://127.0.0.1:%d", ports[3])
	startEnvoy(t, bin, dir, boot)

	h.waitSynced(envoyNode)
	waitFor(t, "listeners and clusters warm", func() (bool, string) {
		stats := get(t, admin+"/stats?filter=(total_listeners_warming|warming_clusters)$")
		return strings.Contains(stats, "listener_manager.total_listeners_warming: 0") &&
			strings.Contains(stats, "cluster_manager.warming_clusters: 0"), stats
	})
	return h, admin, ports[2]
}

func runEnvoy(t *testing.T, bin string, delta bool) {
	const nodeID = envoyNode
	h, admin, readiness := startEnvoyWithPilot(t, bin, delta, nil)
	if stats := get(t, admin+"/stats?filter=total_listeners_active$"); !strings.Contains(stats, "listener_manager.total_listeners_active: 3") {
		t.Errorf("want 3 active listeners: %s", stats)
	}
	waitFor(t, "readiness 200", func() (bool, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", readiness, generator.ReadinessPath))
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})

	// Push a listener Envoy must reject.
	bad := func(r *generator.Resources) {
		r.Listeners = append(r.Listeners, &listenerv3.Listener{
			Name: "broken",
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "not-an-ip", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 1},
			}}},
		})
	}
	h.srv.testHookInbound.Store(&bad)
	h.srv.Trigger()
	var nack TypeStatus
	waitFor(t, "LDS NACK", func() (bool, string) {
		nack = typeStatus(h.srv.SyncStatus(), nodeID, "LDS")
		return nack.State == NACKed, fmt.Sprintf("%+v", nack)
	})
	if !strings.Contains(nack.Error, "not-an-ip") {
		t.Errorf("NACK error does not carry Envoy's message: %q", nack.Error)
	}
	t.Logf("Envoy's NACK: %s", nack.Error)
	if cds := typeStatus(h.srv.SyncStatus(), nodeID, "CDS"); cds.State != Synced {
		t.Errorf("CDS = %+v after an LDS-only NACK", cds)
	}

	h.srv.testHookInbound.Store(nil)
	h.srv.Trigger()
	h.waitSynced(nodeID)
}

// agentBootstrap is the bootstrap the sidecar agent writes: ADS to pilot
// over mTLS with the SDS secrets, SDS on the agent's Unix socket.
func agentBootstrap(nodeID, xdsPort, sdsSocket string, adminPort uint32, delta bool) *bootstrapv3.Bootstrap {
	b := envoytest.Bootstrap(nodeID, &generator.Resources{}, false)
	b.Node.Metadata = &structpb.Struct{Fields: map[string]*structpb.Value{
		generator.MetaPodName: structpb.NewStringValue("productpage-1"), generator.MetaPodNamespace: structpb.NewStringValue(ns),
	}}
	b.Admin.Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: adminPort}
	port, err := strconv.ParseUint(xdsPort, 10, 16)
	if err != nil {
		panic(err)
	}
	xdsCluster := b.StaticResources.Clusters[0]
	xdsCluster.LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().Address.GetSocketAddress().PortSpecifier =
		&corev3.SocketAddress_PortValue{PortValue: uint32(port)}
	tlsCtx, err := anypb.New(&tlsv3.UpstreamTlsContext{
		Sni: "pilot.weft-system.svc",
		CommonTlsContext: &tlsv3.CommonTlsContext{
			// grpc-go servers refuse TLS clients that negotiate no ALPN.
			AlpnProtocols:                  []string{"h2"},
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: generator.SecretDefault, SdsConfig: sdsSource()}},
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
				ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: generator.SecretRootCA, SdsConfig: sdsSource()},
			},
		},
	})
	if err != nil {
		panic(err)
	}
	xdsCluster.TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: tlsCtx}}
	b.StaticResources.Clusters[1].LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().Address =
		&corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: sdsSocket}}}
	if delta {
		b.DynamicResources.AdsConfig.ApiType = corev3.ApiConfigSource_DELTA_GRPC
	}
	ads := &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
	b.DynamicResources.CdsConfig, b.DynamicResources.LdsConfig = ads, ads
	return b
}

func sdsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_ApiConfigSource{ApiConfigSource: &corev3.ApiConfigSource{
			ApiType: corev3.ApiConfigSource_GRPC, TransportApiVersion: corev3.ApiVersion_V3,
			GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: generator.SDSClusterName}}}},
		}}}
}

func startEnvoy(t *testing.T, bin, dir string, b *bootstrapv3.Bootstrap) {
	t.Helper()
	data, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "envoy.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "envoy.log")
	cmd := exec.Command(bin, "-c", path, "--disable-hot-restart", "-l", "info", "--log-path", logPath,
		"--concurrency", "1", "--drain-time-s", "1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cmd.Process.Kill(); err != nil {
			t.Logf("kill envoy: %v", err)
		}
		_ = cmd.Wait()
		if t.Failed() {
			if log, err := os.ReadFile(logPath); err == nil {
				t.Logf("envoy log:\n%s", log)
			}
		}
	})
}

func freePorts(t *testing.T, n int) []uint32 {
	t.Helper()
	var out []uint32
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, uint32(l.Addr().(*net.TCPAddr).Port))
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, detail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
