package xds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/weftmesh/weft/pilot/xds/xdstest"
)

// tlsHarness runs the server with real mTLS and TLSAuthenticator.
func tlsHarness(t *testing.T) (*harness, *xdstest.CA) {
	t.Helper()
	return tlsHarnessWith(t, nil)
}

func tlsHarnessWith(t *testing.T, mutate func(*Config)) (*harness, *xdstest.CA) {
	t.Helper()
	ca, err := xdstest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.Issue("spiffe://cluster.local/ns/weft-system/sa/pilot", []string{"pilot.weft-system.svc"}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	h := startServer(t, func(c *Config) {
		c.Authenticator = nil
		c.TLS = ServerTLSConfig(func() (*tls.Certificate, error) { return &serving.TLS, nil }, ca.Pool)
		if mutate != nil {
			mutate(c)
		}
	})
	return h, ca
}

func tlsClient(t *testing.T, h *harness, roots *x509.CertPool, cert *tls.Certificate, pod string) *xdstest.Client {
	t.Helper()
	c, err := tlsStart(t, h, roots, cert, pod)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tlsStart(t *testing.T, h *harness, roots *x509.CertPool, cert *tls.Certificate, pod string) (*xdstest.Client, error) {
	t.Helper()
	cfg := &tls.Config{RootCAs: roots, ServerName: "pilot.weft-system.svc", MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c, err := xdstest.Start(context.Background(), conn, xdstest.Config{NodeID: pod + "." + ns})
	if err != nil {
		return nil, err
	}
	t.Cleanup(c.Close)
	return c, nil
}

func TestRealTLS(t *testing.T) {
	h, ca := tlsHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	own, err := ca.Issue(spiffe(ns, "productpage"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ok := tlsClient(t, h, ca.Pool(), &own.TLS, "productpage-1")
	if err := ok.WaitFor(ctx, hasResource(resource.ClusterType, reviewsCluster)); err != nil {
		t.Fatalf("proxy with its own SVID got no config: %v", err)
	}

	// A valid SVID of another workload asks for productpage's config.
	other, err := ca.Issue(spiffe(ns, "reviews"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	foreign := tlsClient(t, h, ca.Pool(), &other.TLS, "productpage-1")
	<-foreign.Done()
	if st, _ := status.FromError(foreign.Err()); st.Code() != codes.PermissionDenied ||
		!strings.Contains(st.Message(), "spiffe://cluster.local/ns/shop/sa/reviews may not receive config for pod shop/productpage-1") {
		t.Fatalf("foreign SVID: got %v", foreign.Err())
	}

	// A certificate from another CA, and no certificate, fail the handshake.
	rogueCA, err := xdstest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := rogueCA.Issue(spiffe(ns, "productpage"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, cert := range map[string]*tls.Certificate{"foreign CA": &rogue.TLS, "no certificate": nil} {
		c, err := tlsStart(t, h, ca.Pool(), cert, "productpage-1")
		if err != nil {
			// The handshake fails; depending on timing the client sees
			// the TLS alert or the closed connection.
			if status.Code(err) != codes.Unavailable {
				t.Errorf("%s: want a failed handshake (Unavailable), got %v", name, err)
			}
			continue
		}
		<-c.Done()
		if c.Err() == nil || len(c.Resources(resource.ClusterType)) != 0 {
			t.Errorf("%s: got config (err %v)", name, c.Err())
		}
	}
	if n := len(h.srv.SyncStatus()); n != 1 {
		t.Errorf("status lists %d proxies, want only the authorised one", n)
	}
}

func TestTLSAuthenticatorRejectsPlaintext(t *testing.T) {
	if _, err := (TLSAuthenticator{}).Authenticate(context.Background()); err == nil {
		t.Fatal("authenticated a context without peer")
	}
}
