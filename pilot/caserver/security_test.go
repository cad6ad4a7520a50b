package caserver

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	cav1 "github.com/weftmesh/weft/api/ca/v1"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	spiffeA      = "spiffe://cluster.local/ns/default/sa/a"
	spiffeB      = "spiffe://cluster.local/ns/default/sa/b"
	spiffeOtherA = "spiffe://cluster.local/ns/other/sa/a"
)

func requireRefused(t *testing.T, err error, code codes.Code, r Reason) {
	t.Helper()
	require.Error(t, err)
	st, ok := status.FromError(err)
	require.True(t, ok, "gRPC status: %v", err)
	assert.Equal(t, code, st.Code(), st.Message())
	assert.Contains(t, st.Message(), string(r)+":")
	assert.Equal(t, 1, strings.Count(st.Message(), string(r)+":"), "reason stated once: %s", st.Message())
}

func TestRightTokenGetsItsOwnIdentity(t *testing.T) {
	e := newEnv(t)
	resp, err := e.call(t, "tok-a", csrFor(t, newKey(t), spiffeA))
	require.NoError(t, err)
	var chain []*x509.Certificate
	for _, der := range resp.CertChainDer {
		c, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		chain = append(chain, c)
	}
	var roots []*x509.Certificate
	for _, der := range resp.TrustBundleDer {
		c, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		roots = append(roots, c)
	}
	id, _, err := x509svid.Verify(chain, x509bundle.FromX509Authorities(td, roots))
	require.NoError(t, err)
	assert.Equal(t, spiffeA, id.String())
}

func TestTokenCannotBuyAnotherIdentity(t *testing.T) {
	e := newEnv(t)
	key := newKey(t)
	for name, tc := range map[string]struct {
		token string
		csr   []byte
	}{
		"SA a asks for SA b":              {"tok-a", csrFor(t, key, spiffeB)},
		"SA a asks for other namespace":   {"tok-a", csrFor(t, key, spiffeOtherA)},
		"other namespace asks for SA a":   {"tok-o", csrFor(t, key, spiffeA)},
		"SA a adds SA b as second URI":    {"tok-a", csrFor(t, key, spiffeA, spiffeB)},
		"foreign trust domain":            {"tok-a", csrFor(t, key, "spiffe://evil.example/ns/default/sa/a")},
		"extra DNS SAN":                   {"tok-a", csr(t, key, &x509.CertificateRequest{URIs: parseURIs(t, spiffeA), DNSNames: []string{"kubernetes.default.svc"}})},
		"pilot's own DNS name":            {"tok-a", csr(t, key, &x509.CertificateRequest{URIs: parseURIs(t, spiffeA), DNSNames: ServingNames("", "cluster.local")})},
		"no SAN, identity in common name": {"tok-a", csr(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: spiffeA}})},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.call(t, tc.token, tc.csr)
			requireRefused(t, err, codes.PermissionDenied, ReasonSANMismatch)
		})
	}
}

func TestCARequestIsRefused(t *testing.T) {
	e := newEnv(t)
	caTrue, err := asn1.Marshal(struct{ IsCA bool }{true})
	require.NoError(t, err)
	der := csr(t, newKey(t), &x509.CertificateRequest{URIs: parseURIs(t, spiffeA),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: caTrue}}})
	_, err = e.call(t, "tok-a", der)
	requireRefused(t, err, codes.PermissionDenied, ReasonCARequested)

	_, err = e.call(t, "tok-a", []byte("garbage"))
	requireRefused(t, err, codes.InvalidArgument, ReasonBadCSR)
}

func TestBadTokensAreRefused(t *testing.T) {
	e := newEnv(t)
	e.tokens.reviews["tok-expired"] = authnv1.TokenReviewStatus{Error: "[invalid bearer token, square/go-jose/jwt: validation failed, token is expired (exp)]"}
	e.tokens.reviews["tok-wrong-aud"] = authnv1.TokenReviewStatus{Error: `token audiences ["https://kubernetes.default.svc"] is invalid for the target audiences ["weft-ca"]`}
	st := boundToken("default", "a", "pod-a", "uid-a")
	st.Audiences = []string{"https://kubernetes.default.svc"}
	e.tokens.reviews["tok-aud-unchecked"] = st
	unbound := boundToken("default", "a", "pod-a", "uid-a")
	unbound.User.Extra = nil
	e.tokens.reviews["tok-legacy"] = unbound
	e.tokens.reviews["tok-user"] = authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{DefaultAudience},
		User: authnv1.UserInfo{Username: "alice"}}

	key := newKey(t)
	for name, tc := range map[string]struct {
		token string
		want  Reason
	}{
		"no token":                    {"", ReasonMissingToken},
		"expired":                     {"tok-expired", ReasonInvalidToken},
		"wrong audience":              {"tok-wrong-aud", ReasonWrongAudience},
		"audience ignored by server":  {"tok-aud-unchecked", ReasonWrongAudience},
		"forged":                      {"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDphIn0.Zm9yZ2Vk", ReasonInvalidToken},
		"legacy token without pod":    {"tok-legacy", ReasonNotPodBound},
		"user, not a service account": {"tok-user", ReasonNotServiceAccount},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.call(t, tc.token, csrFor(t, key, spiffeA))
			requireRefused(t, err, codes.Unauthenticated, tc.want)
		})
	}
}

func TestPodBindingIsCheckedLive(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := newKey(t)
	_, err := e.call(t, "tok-a", csrFor(t, key, spiffeA))
	require.NoError(t, err, "token is now in the authentication cache")

	require.NoError(t, e.client.CoreV1().Pods("default").Delete(ctx, "pod-a", metav1.DeleteOptions{}))
	_, err = e.call(t, "tok-a", csrFor(t, key, spiffeA))
	requireRefused(t, err, codes.PermissionDenied, ReasonPodNotFound)

	// A new pod with the same name is a different pod: the old token is dead.
	_, err = e.client.CoreV1().Pods("default").Create(ctx, testPod("default", "pod-a", "a", "uid-new"), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = e.call(t, "tok-a", csrFor(t, key, spiffeA))
	requireRefused(t, err, codes.PermissionDenied, ReasonPodNotFound)

	// A token claiming a pod that runs as another ServiceAccount.
	e.tokens.reviews["tok-a-on-b"] = boundToken("default", "a", "pod-b", "uid-b")
	_, err = e.call(t, "tok-a-on-b", csrFor(t, key, spiffeA))
	requireRefused(t, err, codes.PermissionDenied, ReasonPodMismatch)
}

func TestFloodIsLimitedWithoutStarvingOthers(t *testing.T) {
	frozen := time.Now()
	e := newEnv(t, func(c *Config) {
		c.Rate, c.Burst = rate.Limit(1), 10
		c.Clock = func() time.Time { return frozen } // no refill during the test
	})
	keyA, keyB := newKey(t), newKey(t)
	csrA, csrB := csrFor(t, keyA, spiffeA), csrFor(t, keyB, spiffeB)

	var mu sync.Mutex
	results := map[codes.Code]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				_, err := e.call(t, "tok-a", csrA)
				mu.Lock()
				results[status.Code(err)]++
				mu.Unlock()
			}
		})
	}
	// Identity b keeps working while a floods.
	for range 5 {
		_, err := e.call(t, "tok-b", csrB)
		require.NoError(t, err, "identity b is not starved")
	}
	wg.Wait()
	assert.Equal(t, 10, results[codes.OK], "a got exactly its burst")
	assert.Equal(t, 190, results[codes.ResourceExhausted])
	assert.LessOrEqual(t, e.tokens.reviewCalls(), 2+8, "cached authentications keep the flood off the API server")

	_, err := e.call(t, "tok-a", csrA)
	requireRefused(t, err, codes.ResourceExhausted, ReasonRateLimited)

	// Every refusal was counted with its reason.
	var rm metricdata.ResourceMetrics
	require.NoError(t, e.reader.Collect(context.Background(), &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range sum.DataPoints {
					r, _ := dp.Attributes.Value(attribute.Key("reason"))
					got[m.Name+"/"+r.AsString()] += dp.Value
				}
			}
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
				got[m.Name] = int64(h.DataPoints[0].Count)
			}
		}
	}
	assert.Equal(t, int64(15), got["weft_ca_csr_signed/"])
	assert.Equal(t, int64(191), got["weft_ca_csr_refused/rate_limited"])
	assert.Equal(t, int64(15), got["weft_ca_sign_duration"])
}

func TestLimiterMapIsBounded(t *testing.T) {
	l := newLimiter(rate.Limit(1), 1, 3)
	now := time.Now()
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		assert.True(t, l.allow(id, now.Add(time.Duration(i)*time.Millisecond)))
	}
	assert.LessOrEqual(t, len(l.items), 3)
	assert.False(t, l.allow("e", now.Add(5*time.Millisecond)), "recent identity keeps its empty bucket")
}

func TestCANotLoadedIsUnavailable(t *testing.T) {
	e := newEnv(t)
	srv, err := New(Config{CA: staticCA{}, Authenticator: &TokenAuthenticator{Client: e.client}})
	require.NoError(t, err)
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer tok-a"))
	_, err = srv.CreateCertificate(ctx, &cav1.CreateCertificateRequest{CsrDer: csrFor(t, newKey(t), spiffeA)})
	requireRefused(t, err, codes.Unavailable, ReasonCAUnavailable)
}

func parseURIs(t *testing.T, ids ...string) []*url.URL {
	t.Helper()
	var out []*url.URL
	for _, id := range ids {
		u, err := url.Parse(id)
		require.NoError(t, err)
		out = append(out, u)
	}
	return out
}
