package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/pilot/ca"
	"github.com/weftmesh/weft/pilot/caserver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var td = spiffeid.RequireTrustDomainFromString("cluster.local")

// fakeJWT is shaped like a projected ServiceAccount token.
func fakeJWT(ns, sa string) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"sub": "system:serviceaccount:" + ns + ":" + sa, "aud": []string{"weft-ca"}})
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(claims) + ".c2ln"
}

// fakeAuth accepts tokens made by fakeJWT and can fail the first calls.
type fakeAuth struct {
	mu       sync.Mutex
	failNext int
	calls    int
}

func (f *fakeAuth) Authenticate(_ context.Context, token string) (caserver.Caller, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failNext > 0 {
		f.failNext--
		return caserver.Caller{}, &caserver.RefusalError{Reason: caserver.ReasonAuthUnavailable, Err: context.DeadlineExceeded}
	}
	id, err := idFromToken(td, token)
	if err != nil {
		return caserver.Caller{}, &caserver.RefusalError{Reason: caserver.ReasonInvalidToken, Err: err}
	}
	parts := strings.Split(id.Path(), "/")
	return caserver.Caller{Namespace: parts[2], ServiceAccount: parts[4], PodName: "p", PodUID: "u"}, nil
}

func (f *fakeAuth) CheckBinding(context.Context, caserver.Caller) error { return nil }

// testCA is pilot's CA endpoint on loopback TLS.
type testCA struct {
	addr     string
	rootFile string
	auth     *fakeAuth
	ca       *ca.CA
}

type staticCA struct{ c *ca.CA }

func (s staticCA) CA() *ca.CA { return s.c }

// startCA serves the CA; opts adjust its configuration (tracing tests give
// it a TracerProvider).
func startCA(t testing.TB, opts ...func(*caserver.Config)) *testCA {
	t.Helper()
	auth, err := ca.NewSelfSigned(ca.RootConfig{TrustDomain: td})
	require.NoError(t, err)
	authority, err := ca.New(ca.Config{TrustDomain: td, Signer: auth.Signer, Roots: auth.Roots})
	require.NoError(t, err)
	fa := &fakeAuth{}
	cfg := caserver.Config{CA: staticCA{authority}, Authenticator: fa, AuthCacheTTL: -1}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := caserver.New(cfg)
	require.NoError(t, err)
	g := caserver.NewGRPCServer(srv, &caserver.ServingCert{CA: staticCA{authority}, DNSNames: caserver.ServingNames("", "cluster.local")})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- caserver.Serve(ctx, g, lis) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	root := filepath.Join(t.TempDir(), "root-cert.pem")
	require.NoError(t, os.WriteFile(root, ca.EncodeCerts(authority.Roots()), 0o600))
	return &testCA{addr: lis.Addr().String(), rootFile: root, auth: fa, ca: authority}
}

// agentConfig is a Config for the pod default/sa-a talking to c.
func (c *testCA) agentConfig(t testing.TB, socketDir string) Config {
	t.Helper()
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, []byte(fakeJWT("default", "sa-a")+"\n"), 0o600))
	cfg := Config{
		CAAddress: c.addr, CAServerName: "weft-pilot.weft-system.svc", CARootFile: c.rootFile,
		TokenFile: tok, TrustDomain: td,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	}
	if socketDir != "" {
		cfg.SDSSocket, cfg.WorkloadSocket = socketPaths(socketDir)
	}
	return cfg
}

// socketPaths are the SDS and Workload API sockets in dir.
func socketPaths(dir string) (sds, workload string) {
	return filepath.Join(dir, "sds.sock"), filepath.Join(dir, "workload.sock")
}

// shortDir is a socket directory whose paths stay under the 108-byte
// sun_path limit.
func shortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "wa")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, os.RemoveAll(d)) })
	return d
}

// runAgent starts an agent and stops it at cleanup (or when stop is called).
func runAgent(t testing.TB, cfg Config) (*Agent, func()) {
	t.Helper()
	a, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); require.NoError(t, <-done) }) }
	t.Cleanup(stop)
	waitListening(t, a)
	return a, stop
}

// waitListening waits until the agent's sockets accept connections.
func waitListening(t testing.TB, a *Agent) {
	t.Helper()
	select {
	case <-a.Listening():
	case <-time.After(5 * time.Second):
		t.Fatal("agent never listened")
	}
}

// sdsClient is Envoy's side of one SDS stream.
type sdsClient struct {
	stream secretv3.SecretDiscoveryService_StreamSecretsClient
	names  []string
}

func dialSDS(t testing.TB, socket string, names ...string) *sdsClient {
	t.Helper()
	c, closeConn := openSDS(t, socket, names...)
	t.Cleanup(closeConn)
	return c
}

// openSDS is dialSDS with the closing left to the caller (a benchmark
// closes each agent's stream before the next: an open client keeps
// redialling the removed socket and takes CPU from later iterations).
func openSDS(t testing.TB, socket string, names ...string) (*sdsClient, func()) {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	closeConn := func() { cancel(); require.NoError(t, conn.Close()) }
	stream, err := secretv3.NewSecretDiscoveryServiceClient(conn).StreamSecrets(ctx)
	if err != nil {
		closeConn()
	}
	require.NoError(t, err)
	c := &sdsClient{stream: stream, names: names}
	require.NoError(t, c.send("", ""))
	return c, closeConn
}

func (c *sdsClient) send(version, nonce string) error {
	return c.stream.Send(&discovery.DiscoveryRequest{
		Node:          &corev3.Node{Id: "sidecar~10.1.2.3~web-0.default~default.svc.cluster.local"},
		TypeUrl:       resource.SecretType,
		ResourceNames: c.names,
		VersionInfo:   version,
		ResponseNonce: nonce,
	})
}

// next receives one response, ACKs it and returns its secrets by name.
func (c *sdsClient) next(t testing.TB) map[string]*tlsv3.Secret {
	t.Helper()
	resp, err := c.stream.Recv()
	require.NoError(t, err)
	out := map[string]*tlsv3.Secret{}
	for _, r := range resp.Resources {
		s := &tlsv3.Secret{}
		require.NoError(t, r.UnmarshalTo(s))
		out[s.Name] = s
	}
	require.NoError(t, c.send(resp.VersionInfo, resp.Nonce))
	return out
}

func leafOf(t testing.TB, s *tlsv3.Secret) *x509.Certificate {
	t.Helper()
	certs, err := ca.ParseCerts(s.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
	require.NoError(t, err)
	return certs[0]
}

// dialSDSWhenUp connects to the agent's SDS socket once it listens.
func dialSDSWhenUp(t testing.TB, a *Agent) *sdsClient {
	t.Helper()
	waitListening(t, a)
	return dialSDS(t, a.cfg.SDSSocket, SecretDefault)
}

// peerCert is an SVID for default/peer from c, as another workload has.
func peerCert(t testing.TB, c *testCA) tls.Certificate {
	t.Helper()
	cfg := c.agentConfig(t, "")
	require.NoError(t, os.WriteFile(cfg.TokenFile, []byte(fakeJWT("default", "peer")), 0o600))
	require.NoError(t, cfg.setDefaults())
	s, err := fetchSVID(context.Background(), &cfg, nil)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{s.Leaf().Raw}, PrivateKey: s.Key, Leaf: s.Leaf()}
}
