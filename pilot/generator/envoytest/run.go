package envoytest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weftmesh/weft/pilot/generator"
)

// StaticSecrets makes a bootstrap self-contained for a running Envoy: the
// generated TLS contexts fetch the SVID and roots from the agent's SDS
// server, which a test does not run, so every SDS reference keeps its name
// but loses its config source (Envoy then looks the name up among static
// secrets), and the SVID (certPEM, keyPEM) and roots become static
// secrets of those names. The ADS config is dropped: everything is static.
func StaticSecrets(b *bootstrapv3.Bootstrap, certPEM, keyPEM, rootsPEM []byte) {
	b.DynamicResources = nil
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			staticTransportSocket(fc.GetTransportSocket(), &tlsv3.DownstreamTlsContext{})
		}
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		staticTransportSocket(c.GetTransportSocket(), &tlsv3.UpstreamTlsContext{})
		for _, m := range c.GetTransportSocketMatches() {
			staticTransportSocket(m.GetTransportSocket(), &tlsv3.UpstreamTlsContext{})
		}
	}
	inline := func(data []byte) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: data}}
	}
	b.StaticResources.Secrets = append(b.StaticResources.Secrets,
		&tlsv3.Secret{Name: generator.SecretDefault, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inline(certPEM), PrivateKey: inline(keyPEM),
		}}},
		&tlsv3.Secret{Name: generator.SecretRootCA, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: inline(rootsPEM),
		}}})
}

// tlsContext is a downstream or upstream TLS context.
type tlsContext interface {
	proto.Message
	GetCommonTlsContext() *tlsv3.CommonTlsContext
}

func staticTransportSocket(ts *corev3.TransportSocket, ctx tlsContext) {
	if ts.GetTypedConfig() == nil || !ts.GetTypedConfig().MessageIs(ctx) {
		return
	}
	if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
		panic(fmt.Sprintf("unpack %s: %v", ts.GetName(), err))
	}
	common := ctx.GetCommonTlsContext()
	for _, s := range common.GetTlsCertificateSdsSecretConfigs() {
		s.SdsConfig = nil
	}
	if v := common.GetCombinedValidationContext().GetValidationContextSdsSecretConfig(); v != nil {
		v.SdsConfig = nil
	}
	if v := common.GetValidationContextSdsSecretConfig(); v != nil {
		v.SdsConfig = nil
	}
	a, err := anypb.New(ctx)
	if err != nil {
		panic(fmt.Sprintf("pack %s: %v", ts.GetName(), err))
	}
	ts.ConfigType = &corev3.TransportSocket_TypedConfig{TypedConfig: a}
}

// PointCluster sends a static cluster of the bootstrap to ip:port: a test
// stands in for the app behind an inbound cluster (127.0.0.1:<target
// port>, which on one host is the inbound listener itself).
func PointCluster(b *bootstrapv3.Bootstrap, name, ip string, port uint32) bool {
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() != name || c.GetType() != clusterv3.Cluster_STATIC {
			continue
		}
		for _, l := range c.GetLoadAssignment().GetEndpoints() {
			for _, e := range l.GetLbEndpoints() {
				e.GetEndpoint().Address = tcpAddress(ip, port)
			}
		}
		return true
	}
	return false
}

// Envoy is a running Envoy with its admin API on loopback.
type Envoy struct {
	// Admin is the admin API's base URL (http://127.0.0.1:<port>).
	Admin string
	// Pid is the process ID, for CPU accounting.
	Pid int
	log string
}

// Run starts Envoy with the bootstrap (its admin address is replaced by
// 127.0.0.1 with a free port) and env added to the test's environment,
// waits until the server is LIVE, and stops it when the test ends; a
// failed test gets Envoy's log.
func Run(t testing.TB, bin string, b *bootstrapv3.Bootstrap, env []string) *Envoy {
	t.Helper()
	b = proto.Clone(b).(*bootstrapv3.Bootstrap)
	b.Admin = &bootstrapv3.Admin{Address: tcpAddress("127.0.0.1", 0)}
	dir := t.TempDir()
	data, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	cfg, addrPath, logPath := filepath.Join(dir, "envoy.json"), filepath.Join(dir, "admin"), filepath.Join(dir, "envoy.log")
	if err := os.WriteFile(cfg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", cfg, "--disable-hot-restart", "--base-id", "0", "--use-dynamic-base-id",
		"--concurrency", "1", "-l", "warning", "--log-path", logPath, "--admin-address-path", addrPath)
	cmd.Env = append(os.Environ(), env...)
	// A test binary killed mid-run (a benchmark's timeout) takes Envoy
	// with it instead of leaving it bound to its ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start envoy: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	e := &Envoy{Pid: cmd.Process.Pid, log: logPath}
	t.Cleanup(func() {
		if err := cmd.Process.Kill(); err != nil {
			t.Logf("kill envoy: %v", err)
		}
		<-exited
		if t.Failed() {
			t.Logf("envoy log:\n%s", e.Log())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("envoy exited:\n%s", e.Log())
		default:
		}
		if addr, err := os.ReadFile(addrPath); err == nil && len(addr) > 0 {
			e.Admin = "http://" + strings.TrimSpace(string(addr))
			if state, err := e.Get("/ready"); err == nil && strings.TrimSpace(state) == "LIVE" {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("envoy not LIVE after 30s:\n%s", e.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Get fetches an admin API path.
func (e *Envoy) Get(path string) (string, error) {
	resp, err := http.Get(e.Admin + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return string(body), nil
}

// Log is Envoy's log so far.
func (e *Envoy) Log() string {
	b, err := os.ReadFile(e.log)
	if err != nil {
		return err.Error()
	}
	return string(bytes.TrimSpace(b))
}
