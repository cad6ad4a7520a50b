package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	xds "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/pilot/ca"
	"github.com/weftmesh/weft/pilot/caserver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// testXDS stands in for pilot's xDS endpoint: mTLS with a serving
// certificate from the test CA naming serverID, client certificates
// required, and an empty configuration (no clusters, no listeners) for
// the one node ID it expects, which is enough for Envoy to go LIVE.
type testXDS struct {
	addr string

	mu    sync.Mutex
	peers []string // SPIFFE IDs of connected clients
}

func startXDS(t *testing.T, c *testCA, serverID spiffeid.ID, nodeID string) *testXDS {
	t.Helper()
	cert := servingCert(t, c.ca, serverID)
	x := &testXDS{}
	snapCache := cache.NewSnapshotCache(true, cache.IDHash{}, nil)
	snap, err := cache.NewSnapshot("1", map[resource.Type][]types.Resource{
		resource.ClusterType: {}, resource.ListenerType: {},
	})
	require.NoError(t, err)
	require.NoError(t, snap.Consistent())
	require.NoError(t, snapCache.SetSnapshot(context.Background(), nodeID, snap))

	ctx, cancel := context.WithCancel(context.Background())
	srv := xds.NewServer(ctx, snapCache, nil)
	g := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(&tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    poolOf(c.ca.Roots()),
			NextProtos:   []string{"h2"},
		})),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if p, ok := peer.FromContext(ss.Context()); ok {
				if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
					x.mu.Lock()
					for _, u := range ti.State.PeerCertificates[0].URIs {
						x.peers = append(x.peers, u.String())
					}
					x.mu.Unlock()
				}
			}
			return h(srv, ss)
		}),
	)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	x.addr = lis.Addr().String()
	done := make(chan error, 1)
	go func() { done <- g.Serve(lis) }()
	t.Cleanup(func() {
		cancel()
		g.Stop()
		require.NoError(t, <-done)
	})
	return x
}

func (x *testXDS) peerIDs() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]string(nil), x.peers...)
}

// servingCert is an X.509-SVID for id with pilot's DNS names, as pilot's
// serving certificate is.
func servingCert(t *testing.T, authority *ca.CA, id spiffeid.ID) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	dns := caserver.ServingNames("", "cluster.local")
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{id.URL()}, DNSNames: dns}, key)
	require.NoError(t, err)
	issued, err := authority.Sign(ca.Request{CSR: csr, ID: id, DNSNames: dns})
	require.NoError(t, err)
	var chain [][]byte
	for _, c := range issued.Chain {
		chain = append(chain, c.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: issued.Leaf()}
}

// syncBuffer collects Envoy's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

// httpGet returns the status and body of a GET, or an error.
func httpGet(rawURL string) (int, string, http.Header, error) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get(rawURL)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header, err
}

// envoyStat reads one counter from Envoy's admin /stats.
func envoyStat(adminPort int, name string) (int, error) {
	code, body, _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/stats?filter=^%s$", adminPort, name))
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("stats: %d %s", code, body)
	}
	_, v, ok := strings.Cut(strings.TrimSpace(body), ": ")
	if !ok {
		return 0, fmt.Errorf("stat %s not found in %q", name, body)
	}
	return strconv.Atoi(v)
}
