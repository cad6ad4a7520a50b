package caserver

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
	cav1 "github.com/weftmesh/weft/api/ca/v1"
	"github.com/weftmesh/weft/pilot/ca"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

var td = spiffeid.RequireTrustDomainFromString("cluster.local")

// staticCA is a CASource that always returns the same CA.
type staticCA struct{ c *ca.CA }

func (s staticCA) CA() *ca.CA { return s.c }

// fakeTokens plays the API server's TokenReview: token → status.
type fakeTokens struct {
	mu      sync.Mutex
	reviews map[string]authnv1.TokenReviewStatus
	calls   int
}

func (f *fakeTokens) react(action k8stesting.Action) (bool, runtime.Object, error) {
	tr := action.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	st, ok := f.reviews[tr.Spec.Token]
	if !ok {
		st = authnv1.TokenReviewStatus{Error: "invalid bearer token"}
	}
	return true, &authnv1.TokenReview{Spec: tr.Spec, Status: st}, nil
}

func (f *fakeTokens) reviewCalls() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

// boundToken is the status the API server returns for a pod-bound
// projected token with audience weft-ca.
func boundToken(ns, sa, pod, uid string) authnv1.TokenReviewStatus {
	return authnv1.TokenReviewStatus{
		Authenticated: true,
		Audiences:     []string{DefaultAudience},
		User: authnv1.UserInfo{
			Username: "system:serviceaccount:" + ns + ":" + sa,
			Extra: map[string]authnv1.ExtraValue{
				ExtraPodName: {pod},
				ExtraPodUID:  {uid},
			},
		},
	}
}

func testPod(ns, name, sa, uid string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)},
		Spec:       corev1.PodSpec{ServiceAccountName: sa},
	}
}

type env struct {
	ca     *ca.CA
	client *fake.Clientset
	tokens *fakeTokens
	reader *sdkmetric.ManualReader
	conn   *grpc.ClientConn
	now    time.Time
}

type envOption func(*Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	now := time.Now()
	auth, err := ca.NewSelfSigned(ca.RootConfig{TrustDomain: td})
	require.NoError(t, err)
	authority, err := ca.New(ca.Config{TrustDomain: td, Signer: auth.Signer, Roots: auth.Roots})
	require.NoError(t, err)

	e := &env{ca: authority, tokens: &fakeTokens{reviews: map[string]authnv1.TokenReviewStatus{}}, now: now,
		reader: sdkmetric.NewManualReader()}
	e.client = fake.NewClientset(
		testPod("default", "pod-a", "a", "uid-a"),
		testPod("default", "pod-b", "b", "uid-b"),
		testPod("other", "pod-o", "a", "uid-o"),
	)
	e.client.PrependReactor("create", "tokenreviews", e.tokens.react)
	e.tokens.reviews["tok-a"] = boundToken("default", "a", "pod-a", "uid-a")
	e.tokens.reviews["tok-b"] = boundToken("default", "b", "pod-b", "uid-b")
	e.tokens.reviews["tok-o"] = boundToken("other", "a", "pod-o", "uid-o")

	cfg := Config{
		CA:            staticCA{authority},
		Authenticator: &TokenAuthenticator{Client: e.client},
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	require.NoError(t, err)
	g := NewGRPCServer(srv, &ServingCert{CA: cfg.CA, DNSNames: ServingNames("", "cluster.local")})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, g, lis) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	e.conn = dial(t, lis.Addr().String(), authority.Roots())
	return e
}

func dial(t testing.TB, addr string, roots []*x509.Certificate) *grpc.ClientConn {
	t.Helper()
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: pool, ServerName: "weft-pilot.weft-system.svc", MinVersion: tls.VersionTLS12,
	})))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, conn.Close()) })
	return conn
}

func newKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func csr(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	require.NoError(t, err)
	return der
}

func csrFor(t testing.TB, key crypto.Signer, ids ...string) []byte {
	t.Helper()
	var uris []*url.URL
	for _, id := range ids {
		u, err := url.Parse(id)
		require.NoError(t, err)
		uris = append(uris, u)
	}
	return csr(t, key, &x509.CertificateRequest{URIs: uris})
}

// call sends a CSR with the token (none when empty).
func (e *env) call(t testing.TB, token string, csrDER []byte) (*cav1.CreateCertificateResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	return cav1.NewCertificateServiceClient(e.conn).CreateCertificate(ctx, &cav1.CreateCertificateRequest{CsrDer: csrDER})
}
