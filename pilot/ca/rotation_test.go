package ca

import (
	"crypto"
	"crypto/x509"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const day = 24 * time.Hour

func testPolicy(clock *fakeClock) RotationPolicy {
	return RotationPolicy{
		RenewBefore: 30 * day,
		Overlap:     day,
		RetireAfter: day,
		NewRoot: func(now time.Time) (KeyPair, error) {
			return NewRoot(RootConfig{TrustDomain: td, TTL: 365 * day, Clock: func() time.Time { return now }})
		},
	}
}

func caFor(t *testing.T, a Authority, clock *fakeClock) *CA {
	t.Helper()
	c, err := New(Config{TrustDomain: td, Signer: a.Signer, Roots: a.Roots, Clock: clock.Now})
	require.NoError(t, err)
	return c
}

func TestRootRotationTiming(t *testing.T) {
	clock := &fakeClock{now: epoch}
	p := testPolicy(clock)
	a, err := NewSelfSigned(RootConfig{TrustDomain: td, TTL: 100 * day, Clock: clock.Now})
	require.NoError(t, err)
	oldRoot := a.Signer.Cert()

	// Plenty of lifetime left: nothing happens.
	clock.Advance(69 * day)
	a, changed, err := p.Step(a, clock.Now())
	require.NoError(t, err)
	assert.False(t, changed)
	assert.Nil(t, a.Next)

	// 30 days left: step 1, the next root is published but does not sign.
	clock.Advance(day)
	a, changed, err = p.Step(a, clock.Now())
	require.NoError(t, err)
	require.True(t, changed)
	require.NotNil(t, a.Next)
	assert.True(t, a.Signer.Cert().Equal(oldRoot), "old root still signs")
	assert.Len(t, a.Roots, 2, "bundle carries old and new")
	newRoot := a.Next.Cert()

	// Stepping again inside the overlap changes nothing.
	clock.Advance(day - time.Second)
	a, changed, err = p.Step(a, clock.Now())
	require.NoError(t, err)
	assert.False(t, changed)

	// Overlap over: step 2, the new root signs, the old one stays trusted.
	clock.Advance(time.Second)
	a, changed, err = p.Step(a, clock.Now())
	require.NoError(t, err)
	require.True(t, changed)
	assert.True(t, a.Signer.Cert().Equal(newRoot))
	assert.Nil(t, a.Next)
	assert.Len(t, a.Roots, 2)
	assert.Equal(t, clock.Now().Add(day), a.RetireAt)

	// Step 3: once leaves of the old root have expired, it leaves the bundle.
	clock.Advance(day)
	a, changed, err = p.Step(a, clock.Now())
	require.NoError(t, err)
	require.True(t, changed)
	require.Len(t, a.Roots, 1)
	assert.True(t, a.Roots[0].Equal(newRoot))
	assert.True(t, a.RetireAt.IsZero())

	a2, changed, err := p.Step(a, clock.Now())
	require.NoError(t, err)
	assert.False(t, changed, "steady state is a fixed point")
	assert.Equal(t, a, a2)
}

func TestLeavesOfOldAndNewRootVerifyDuringOverlap(t *testing.T) {
	clock := &fakeClock{now: epoch}
	p := testPolicy(clock)
	a, err := NewSelfSigned(RootConfig{TrustDomain: td, TTL: 30 * day, Clock: clock.Now})
	require.NoError(t, err)
	a, _, err = p.Step(a, clock.Now())
	require.NoError(t, err)
	require.NotNil(t, a.Next, "30 days left = RenewBefore: rotation starts")

	// During step 1 the old root signs; the leaf carries the two-root bundle.
	oldLeaf, err := caFor(t, a, clock).Sign(Request{CSR: csrForID(t, newKey(t), idA), ID: idA})
	require.NoError(t, err)
	assert.Len(t, oldLeaf.Roots, 2)

	clock.Advance(day)
	a, _, err = p.Step(a, clock.Now())
	require.NoError(t, err)
	require.Nil(t, a.Next, "switched to the new root")
	newLeaf, err := caFor(t, a, clock).Sign(Request{CSR: csrForID(t, newKey(t), idB), ID: idB})
	require.NoError(t, err)

	// A peer that got the bundle with either leaf verifies both.
	for _, bundle := range [][]*x509.Certificate{oldLeaf.Roots, newLeaf.Roots} {
		b := x509bundle.FromX509Authorities(td, bundle)
		for _, leaf := range []*Issued{oldLeaf, newLeaf} {
			_, _, err := x509svid.Verify(leaf.Chain, b, x509svid.WithTime(clock.Now()))
			assert.NoError(t, err)
		}
	}
	// The leaves were really signed by different roots.
	assert.NotEqual(t, oldLeaf.Leaf().AuthorityKeyId, newLeaf.Leaf().AuthorityKeyId)

	// After retirement only the new root is trusted; the old leaf has expired.
	clock.Advance(day)
	a, _, err = p.Step(a, clock.Now())
	require.NoError(t, err)
	b := x509bundle.FromX509Authorities(td, a.Roots)
	_, _, err = x509svid.Verify(oldLeaf.Chain, b, x509svid.WithTime(clock.Now().Add(-time.Minute)))
	assert.Error(t, err, "old root no longer trusted")
	_, _, err = x509svid.Verify(newLeaf.Chain, b, x509svid.WithTime(clock.Now().Add(-time.Minute)))
	assert.NoError(t, err)
}

func TestAuthorityDataRoundTrip(t *testing.T) {
	clock := &fakeClock{now: epoch}
	p := testPolicy(clock)
	a, err := NewSelfSigned(RootConfig{TrustDomain: td, TTL: 10 * day, Clock: clock.Now})
	require.NoError(t, err)
	a, _, err = p.Step(a, clock.Now())
	require.NoError(t, err)
	require.NotNil(t, a.Next)

	data, err := a.MarshalData()
	require.NoError(t, err)
	back, err := UnmarshalAuthority(data)
	require.NoError(t, err)
	certs := cmp.Comparer(func(x, y *x509.Certificate) bool { return x.Equal(y) })
	keys := cmp.Comparer(func(x, y KeyPair) bool {
		return cmp.Equal(x.Chain, y.Chain, certs) && x.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(y.Key.Public())
	})
	assert.Empty(t, cmp.Diff(a, back, certs, keys))

	// The cacerts layout: an intermediate with its chain.
	inter := newIntermediate(t, a.Signer, epoch, day)
	plugged := Authority{Signer: inter, Roots: a.Signer.Chain}
	data, err = plugged.MarshalData()
	require.NoError(t, err)
	assert.Contains(t, data, KeyCertChain)
	back, err = UnmarshalAuthority(data)
	require.NoError(t, err)
	assert.Empty(t, cmp.Diff(plugged, back, certs, keys))

	delete(data, KeyRootCert)
	_, err = UnmarshalAuthority(data)
	assert.ErrorContains(t, err, KeyRootCert)
}

func TestPEMHelpersRejectJunk(t *testing.T) {
	_, err := ParseCerts(nil)
	assert.Error(t, err)
	_, err = ParseCerts([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	assert.Error(t, err)
	_, err = ParseKey([]byte("nope"))
	assert.Error(t, err)
	k := newKey(t)
	pemKey, err := EncodeKey(k)
	require.NoError(t, err)
	back, err := ParseKey(pemKey)
	require.NoError(t, err)
	assert.True(t, k.Equal(back))
}
