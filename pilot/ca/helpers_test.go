package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
)

var (
	td    = spiffeid.RequireTrustDomainFromString("cluster.local")
	idA   = spiffeid.RequireFromString("spiffe://cluster.local/ns/default/sa/a")
	idB   = spiffeid.RequireFromString("spiffe://cluster.local/ns/default/sa/b")
	epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

// fakeClock is the injected clock of the tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// counter is a deterministic SerialSource.
func counter() SerialSource {
	var mu sync.Mutex
	n := int64(0)
	return func() (*big.Int, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		return big.NewInt(n), nil
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func csrFor(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	require.NoError(t, err)
	return der
}

func csrForID(t testing.TB, key crypto.Signer, id spiffeid.ID) []byte {
	return csrFor(t, key, &x509.CertificateRequest{URIs: []*url.URL{id.URL()}})
}

func newSelfSignedCA(t testing.TB, clock *fakeClock, rootTTL time.Duration) (*CA, Authority) {
	t.Helper()
	auth, err := NewSelfSigned(RootConfig{TrustDomain: td, TTL: rootTTL, Clock: clock.Now, Serial: counter()})
	require.NoError(t, err)
	c, err := New(Config{TrustDomain: td, Signer: auth.Signer, Roots: auth.Roots, Clock: clock.Now, Serial: counter()})
	require.NoError(t, err)
	return c, auth
}

// newIntermediate signs a CA certificate for the intermediate key with root.
func newIntermediate(t testing.TB, root KeyPair, now time.Time, ttl time.Duration) KeyPair {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1000),
		Subject:               pkix.Name{CommonName: "intermediate"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(ttl),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.Cert(), key.Public(), root.Key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return KeyPair{Chain: []*x509.Certificate{cert, root.Cert()}, Key: key}
}

func mustID(t testing.TB, u *url.URL) spiffeid.ID {
	t.Helper()
	id, err := spiffeid.FromURI(u)
	require.NoError(t, err)
	return id
}
