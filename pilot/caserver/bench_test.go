package caserver

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	cav1 "github.com/weftmesh/weft/api/ca/v1"
	"github.com/weftmesh/weft/pilot/ca"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/metadata"
	"net"
)

// staticAuth accepts any token as default/a: the benchmark measures the CA
// endpoint (TLS, gRPC, limiter, signing), not the API server.
type staticAuth struct{}

func (staticAuth) Authenticate(context.Context, string) (Caller, error) {
	return Caller{Namespace: "default", ServiceAccount: "a", PodName: "p", PodUID: "u"}, nil
}
func (staticAuth) CheckBinding(context.Context, Caller) error { return nil }

// BenchmarkCreateCertificate measures CSR signing over loopback TLS gRPC:
// one client sequentially, and 64 concurrent clients each with its own
// connection (as 64 agents would have).
//
//	go test -run '^$' -bench CreateCertificate -benchtime 3000x ./pilot/caserver/
func BenchmarkCreateCertificate(b *testing.B) {
	auth, err := ca.NewSelfSigned(ca.RootConfig{TrustDomain: td})
	require.NoError(b, err)
	authority, err := ca.New(ca.Config{TrustDomain: td, Signer: auth.Signer, Roots: auth.Roots})
	require.NoError(b, err)
	srv, err := New(Config{CA: staticCA{authority}, Authenticator: staticAuth{}, Rate: rate.Inf})
	require.NoError(b, err)
	g := NewGRPCServer(srv, &ServingCert{CA: staticCA{authority}, DNSNames: ServingNames("", "cluster.local")})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, g, lis) }()
	defer func() { cancel(); require.NoError(b, <-done) }()

	csrDER := csrFor(b, newKey(b), spiffeA)
	callCtx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer tok")
	req := &cav1.CreateCertificateRequest{CsrDer: csrDER}
	newClient := func() cav1.CertificateServiceClient {
		conn := dial(b, lis.Addr().String(), authority.Roots())
		c := cav1.NewCertificateServiceClient(conn)
		_, err := c.CreateCertificate(callCtx, req) // handshake outside the timing
		require.NoError(b, err)
		return c
	}

	b.Run("sequential", func(b *testing.B) {
		c := newClient()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			if _, err := c.CreateCertificate(callCtx, req); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		report(b, lat)
	})
	b.Run("concurrent-64", func(b *testing.B) {
		const clients = 64
		conns := make([]cav1.CertificateServiceClient, clients)
		for i := range conns {
			conns[i] = newClient()
		}
		var (
			mu   sync.Mutex
			lat  = make([]time.Duration, 0, b.N)
			left atomic.Int64
			wg   sync.WaitGroup
		)
		left.Store(int64(b.N))
		b.ResetTimer()
		for _, c := range conns {
			wg.Go(func() {
				var mine []time.Duration
				for left.Add(-1) >= 0 {
					start := time.Now()
					if _, err := c.CreateCertificate(callCtx, req); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
		}
		wg.Wait()
		report(b, lat)
	})
}

func report(b *testing.B, lat []time.Duration) {
	b.Helper()
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "csr/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
}
