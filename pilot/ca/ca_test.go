package ca

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSignIssuesValidSVID(t *testing.T) {
	clock := &fakeClock{now: epoch}
	c, auth := newSelfSignedCA(t, clock, 365*24*time.Hour)
	key := newKey(t)

	got, err := c.Sign(Request{CSR: csrForID(t, key, idA)})
	require.Error(t, err, "zero ID is outside the trust domain")

	got, err = c.Sign(Request{CSR: csrForID(t, key, idA), ID: idA})
	require.NoError(t, err)
	leaf := got.Leaf()

	require.Len(t, leaf.URIs, 1)
	assert.Equal(t, idA.String(), leaf.URIs[0].String())
	assert.Empty(t, leaf.DNSNames)
	assert.ElementsMatch(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, leaf.ExtKeyUsage)
	assert.Equal(t, x509.KeyUsageDigitalSignature, leaf.KeyUsage)
	assert.False(t, leaf.IsCA)
	assert.True(t, leaf.BasicConstraintsValid)
	assert.True(t, leaf.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()), "certifies the CSR's key")
	assert.Equal(t, epoch.Add(DefaultTTL), leaf.NotAfter, "default TTL is 24h")
	assert.True(t, leaf.NotBefore.Before(epoch))
	assert.Equal(t, big.NewInt(1), leaf.SerialNumber, "serial comes from the injected source")
	assert.Len(t, got.Chain, 1, "self-signed root is not part of the chain")

	id, _, err := x509svid.Verify(got.Chain, x509bundle.FromX509Authorities(td, auth.Roots), x509svid.WithTime(epoch))
	require.NoError(t, err)
	assert.Equal(t, idA, id)
	assert.True(t, got.Roots[0].Equal(auth.Signer.Cert()))
}

func TestTTLIsCappedAtCALifetime(t *testing.T) {
	clock := &fakeClock{now: epoch}
	c, _ := newSelfSignedCA(t, clock, 48*time.Hour)

	got, err := c.Sign(Request{CSR: csrForID(t, newKey(t), idA), ID: idA, TTL: time.Hour})
	require.NoError(t, err)
	assert.Equal(t, epoch.Add(time.Hour), got.Leaf().NotAfter, "requested TTL honoured")

	got, err = c.Sign(Request{CSR: csrForID(t, newKey(t), idA), ID: idA, TTL: 30 * 24 * time.Hour})
	require.NoError(t, err)
	assert.Equal(t, epoch.Add(DefaultTTL), got.Leaf().NotAfter, "capped at MaxTTL")

	clock.Advance(40 * time.Hour)
	got, err = c.Sign(Request{CSR: csrForID(t, newKey(t), idA), ID: idA})
	require.NoError(t, err)
	assert.Equal(t, c.NotAfter(), got.Leaf().NotAfter, "never outlives the CA")
	assert.False(t, got.Leaf().NotAfter.After(c.SignerCert().NotAfter))

	clock.Advance(9 * time.Hour)
	_, err = c.Sign(Request{CSR: csrForID(t, newKey(t), idA), ID: idA})
	assert.ErrorIs(t, err, ErrCAExpired)
}

func TestIntermediateChainVerifies(t *testing.T) {
	clock := &fakeClock{now: epoch}
	root, err := NewRoot(RootConfig{TrustDomain: td, Clock: clock.Now})
	require.NoError(t, err)
	inter := newIntermediate(t, root, epoch, 12*time.Hour)
	c, err := New(Config{TrustDomain: td, Signer: inter, Roots: root.Chain, Clock: clock.Now})
	require.NoError(t, err)
	assert.Equal(t, inter.Cert().NotAfter, c.NotAfter())

	got, err := c.Sign(Request{CSR: csrForID(t, newKey(t), idA), ID: idA})
	require.NoError(t, err)
	require.Len(t, got.Chain, 2, "leaf + intermediate, no root")
	assert.True(t, got.Chain[1].Equal(inter.Cert()))
	assert.Equal(t, inter.Cert().NotAfter, got.Leaf().NotAfter, "capped at the intermediate")
	_, _, err = x509svid.Verify(got.Chain, c.Bundle(), x509svid.WithTime(epoch))
	require.NoError(t, err)
}

func TestNewRejectsBrokenSigningMaterial(t *testing.T) {
	clock := &fakeClock{now: epoch}
	root, err := NewRoot(RootConfig{TrustDomain: td, Clock: clock.Now})
	require.NoError(t, err)
	other, err := NewRoot(RootConfig{TrustDomain: td, Clock: clock.Now})
	require.NoError(t, err)

	_, err = New(Config{TrustDomain: td, Signer: KeyPair{Chain: root.Chain, Key: other.Key}, Roots: root.Chain})
	assert.ErrorContains(t, err, "does not match")
	_, err = New(Config{TrustDomain: td, Signer: root, Roots: other.Chain, Clock: clock.Now})
	assert.ErrorContains(t, err, "does not verify")
	_, err = New(Config{TrustDomain: td, Signer: root, Clock: clock.Now})
	assert.ErrorContains(t, err, "empty trust bundle")
	_, err = New(Config{TrustDomain: td, Signer: root, Roots: root.Chain, DefaultTTL: 2 * time.Hour, MaxTTL: time.Hour})
	assert.Error(t, err)

	leafKey := newKey(t)
	c, err := New(Config{TrustDomain: td, Signer: root, Roots: root.Chain, Clock: clock.Now})
	require.NoError(t, err)
	issued, err := c.Sign(Request{CSR: csrForID(t, leafKey, idA), ID: idA})
	require.NoError(t, err)
	_, err = New(Config{TrustDomain: td, Signer: KeyPair{Chain: issued.Chain, Key: leafKey}, Roots: root.Chain, Clock: clock.Now})
	assert.ErrorContains(t, err, "not a CA", "a leaf cannot become a signer")
}

func TestSignRefusesBadCSRs(t *testing.T) {
	clock := &fakeClock{now: epoch}
	c, _ := newSelfSignedCA(t, clock, 0)
	key := newKey(t)
	otherTD, err := url.Parse("spiffe://evil.example/ns/default/sa/a")
	require.NoError(t, err)
	sanExt := func(t *testing.T, names ...asn1.RawValue) []pkix.Extension {
		v, err := asn1.Marshal(names)
		require.NoError(t, err)
		return []pkix.Extension{{Id: oidSubjectAltName, Value: v}}
	}
	uriName := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(idA.String())}
	otherName := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: []byte{0x06, 0x01, 0x2a, 0xa0, 0x03, 0x0c, 0x01, 0x78}}
	caTrue, err := asn1.Marshal(struct{ IsCA bool }{true})
	require.NoError(t, err)
	certSign, err := asn1.Marshal(asn1.BitString{Bytes: []byte{0x04}, BitLength: 6})
	require.NoError(t, err)
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	require.NoError(t, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		csr  []byte
		id   any
		want error
	}{
		"other SA": {csr: csrForID(t, key, idB), want: ErrSANMismatch},
		"extra URI": {csr: csrFor(t, key, &x509.CertificateRequest{URIs: []*url.URL{idA.URL(), idB.URL()}}),
			want: ErrSANMismatch},
		"extra DNS": {csr: csrFor(t, key, &x509.CertificateRequest{URIs: []*url.URL{idA.URL()}, DNSNames: []string{"kubernetes.default.svc"}}),
			want: ErrSANMismatch},
		"extra IP": {csr: csrFor(t, key, &x509.CertificateRequest{URIs: []*url.URL{idA.URL()}, IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}}),
			want: ErrSANMismatch},
		"extra e-mail": {csr: csrFor(t, key, &x509.CertificateRequest{URIs: []*url.URL{idA.URL()}, EmailAddresses: []string{"root@example.com"}}),
			want: ErrSANMismatch},
		"otherName SAN": {csr: csrFor(t, key, &x509.CertificateRequest{ExtraExtensions: sanExt(t, uriName, otherName)}),
			want: ErrSANMismatch},
		"no SAN": {csr: csrFor(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: idA.String()}}), want: ErrSANMismatch},
		"foreign trust domain URI": {csr: csrFor(t, key, &x509.CertificateRequest{URIs: []*url.URL{otherTD}}),
			want: ErrSANMismatch},
		"CA=true": {csr: csrFor(t, key, &x509.CertificateRequest{URIs: []*url.URL{idA.URL()},
			ExtraExtensions: []pkix.Extension{{Id: oidBasicConstraints, Critical: true, Value: caTrue}}}), want: ErrCARequested},
		"keyCertSign": {csr: csrFor(t, key, &x509.CertificateRequest{URIs: []*url.URL{idA.URL()},
			ExtraExtensions: []pkix.Extension{{Id: oidKeyUsage, Critical: true, Value: certSign}}}), want: ErrCARequested},
		"garbage":         {csr: []byte("not a csr"), want: ErrBadCSR},
		"P-521 key":       {csr: csrForID(t, p521, idA), want: ErrUnsupportedKey},
		"Ed25519 key":     {csr: csrForID(t, edKey, idA), want: ErrUnsupportedKey},
		"bad signature":   {csr: tamper(csrForID(t, key, idA)), want: ErrBadCSR},
		"identity abroad": {csr: csrFor(t, key, &x509.CertificateRequest{URIs: []*url.URL{otherTD}}), id: otherTD, want: ErrWrongTrustDomain},
	} {
		t.Run(name, func(t *testing.T) {
			req := Request{CSR: tc.csr, ID: idA}
			if tc.id != nil {
				req.ID = mustID(t, tc.id.(*url.URL))
			}
			_, err := c.Sign(req)
			require.ErrorIs(t, err, tc.want)
			assert.True(t, IsRefusal(err))
		})
	}
}

// tamper flips a bit in the CSR's signature (the last byte of the DER).
func tamper(der []byte) []byte {
	out := append([]byte(nil), der...)
	out[len(out)-1] ^= 0x01
	return out
}
