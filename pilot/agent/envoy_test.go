package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// envoyBinary finds Envoy (installed by `make envoy` into .cache/bin) or
// skips: this test proves the SDS contract against the real consumer.
func envoyBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("envoy"); err == nil {
		return p
	}
	p, err := filepath.Abs("../../.cache/bin/envoy")
	require.NoError(t, err)
	if _, err := os.Stat(p); err != nil {
		t.Skip("envoy not installed (make envoy)")
	}
	return p
}

// envoyBootstrap is the minimum the sidecar bootstrap needs for mTLS from
// SDS: a cluster for sds.sock and TLS contexts naming "default" and "ROOTCA".
const envoyBootstrap = `
node: {id: "sidecar~127.0.0.1~web-0.default~default.svc.cluster.local", cluster: web}
admin: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
static_resources:
  clusters:
  - name: sds-grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: sds-grpc
      endpoints: [{lb_endpoints: [{endpoint: {address: {pipe: {path: "%s"}}}}]}]
  listeners:
  - name: inbound
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            tls_certificate_sds_secret_configs:
            - name: default
              sds_config: &sds
                resource_api_version: V3
                api_config_source:
                  api_type: GRPC
                  transport_api_version: V3
                  grpc_services: [{envoy_grpc: {cluster_name: sds-grpc}}]
            validation_context_sds_secret_config: {name: ROOTCA, sds_config: *sds}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: inbound
          http_filters: [{name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]
          route_config:
            virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: "/"}, direct_response: {status: 200, body: {inline_string: ok}}}]}]
`

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Close()) }()
	return l.Addr().(*net.TCPAddr).Port
}

// TestEnvoyLoadsAndRotatesSVIDOverSDS starts a real Envoy on the agent's
// sds.sock: its mTLS listener presents the agent's SVID, accepts a peer with
// a certificate of the same trust domain, and serves the renewed SVID after
// rotation without restarting.
func TestEnvoyLoadsAndRotatesSVIDOverSDS(t *testing.T) {
	envoy := envoyBinary(t)
	c := startCA(t)
	cfg := c.agentConfig(t, shortDir(t))
	cfg.CertTTL = 6 * time.Second
	a, _ := runAgent(t, cfg)

	adminPort, port := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, envoy, "--config-yaml",
		fmt.Sprintf(envoyBootstrap, adminPort, a.cfg.SDSSocket, port),
		"--base-id", strconv.Itoa(port), "-l", "warning", "--concurrency", "1")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		if err := cmd.Wait(); err != nil && ctx.Err() == nil {
			t.Errorf("envoy: %v\n%s", err, logs.String())
		}
	})

	// A peer with its own SVID from the same CA (here: another agent's key).
	peer := peerCert(t, c)
	handshake := func() (*x509.Certificate, error) { return envoyHandshake(port, peer) }

	var first *x509.Certificate
	require.Eventually(t, func() bool {
		cert, err := handshake()
		first = cert
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "envoy never served mTLS with the SDS secret:\n%s", &logs)
	assert.Equal(t, wantID, first.URIs[0].String())
	_, err := first.Verify(x509.VerifyOptions{Roots: poolOf(c.ca.Roots()), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	require.NoError(t, err)

	// ROOTCA is enforced: a workload of another trust root is turned away.
	_, err = envoyHandshake(port, peerCert(t, startCA(t)))
	assert.Error(t, err, "peer from a foreign CA must be rejected")

	require.Eventually(t, func() bool {
		cert, err := handshake()
		return err == nil && cert.SerialNumber.Cmp(first.SerialNumber) != 0 && time.Now().Before(first.NotAfter)
	}, 10*time.Second, 100*time.Millisecond, "envoy never switched to the rotated SVID")
}

func poolOf(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// envoyHandshake does one mTLS request to Envoy's listener with cert and
// returns the certificate Envoy presented.
func envoyHandshake(port int, cert tls.Certificate) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{
		Certificates: []tls.Certificate{cert},
		// SVIDs carry no DNS name; the caller verifies the presented chain
		// and SPIFFE ID itself.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		return nil, err
	}
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 200")) {
		return nil, fmt.Errorf("unexpected answer %q", buf[:n])
	}
	return conn.ConnectionState().PeerCertificates[0], nil
}
