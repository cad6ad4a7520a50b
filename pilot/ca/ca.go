// Package ca is Weft's certificate authority core: it signs short-lived
// SPIFFE X.509-SVIDs
// (https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md) for
// workload identities and plans root rotations. It is pure: no logging, no
// Kubernetes, no I/O; the clock, serial source and signing material come in
// through Config, so every decision is testable with a mocked clock.
package ca

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// DefaultTTL is the lifetime of a workload certificate when neither the
// request nor the configuration asks for another: 24h, as in Istio, so a
// stolen key is useful for a day at most.
const DefaultTTL = 24 * time.Hour

// Config is what a CA needs. Signer and Roots are required.
type Config struct {
	// TrustDomain of every identity the CA signs.
	TrustDomain spiffeid.TrustDomain
	// Signer signs leaves; its chain must verify against Roots.
	Signer KeyPair
	// Roots is the trust bundle handed out with every certificate; during a
	// root rotation it holds the old and the new root.
	Roots []*x509.Certificate
	// DefaultTTL applies when a request asks for none (DefaultTTL if zero);
	// MaxTTL caps requests (DefaultTTL if zero). Both are further capped at
	// the signer's own NotAfter.
	DefaultTTL, MaxTTL time.Duration
	// Clock, Serial and Rand default to time.Now, RandomSerial and
	// crypto/rand.
	Clock  func() time.Time
	Serial SerialSource
	Rand   io.Reader
}

// CA signs X.509-SVIDs. It is immutable and safe for concurrent use; a root
// rotation builds a new CA.
type CA struct {
	cfg           Config
	intermediates []*x509.Certificate // signer chain without self-signed roots
	bundle        *x509bundle.Bundle
	notAfter      time.Time // earliest NotAfter along signer → root
}

// Request asks the CA to certify the key in a CSR as ID.
type Request struct {
	// CSR is an ASN.1 DER PKCS#10 request. Its SANs must be exactly ID plus
	// DNSNames.
	CSR []byte
	// ID is the identity the caller proved (never taken from the CSR).
	ID spiffeid.ID
	// DNSNames are extra SANs the caller is entitled to; only pilot's own
	// serving certificate uses them.
	DNSNames []string
	// TTL is the requested lifetime; zero means Config.DefaultTTL.
	TTL time.Duration
}

// Issued is a signed X.509-SVID with the bundle that verifies it.
type Issued struct {
	// Chain is the leaf followed by intermediates, without roots.
	Chain []*x509.Certificate
	// Roots is the CA's trust bundle at signing time.
	Roots []*x509.Certificate
}

// Leaf is the issued SVID certificate.
func (i *Issued) Leaf() *x509.Certificate { return i.Chain[0] }

// New checks the signing material (key matches, signer is a CA, chain
// verifies against one of the roots now) so a broken Secret fails at start,
// not at the first CSR.
func New(cfg Config) (*CA, error) {
	if cfg.TrustDomain.IsZero() {
		return nil, fmt.Errorf("new CA: empty trust domain")
	}
	if err := checkKeyMatches(cfg.Signer); err != nil {
		return nil, fmt.Errorf("new CA: %w", err)
	}
	if len(cfg.Roots) == 0 {
		return nil, fmt.Errorf("new CA: empty trust bundle")
	}
	if cfg.DefaultTTL <= 0 {
		cfg.DefaultTTL = DefaultTTL
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = cfg.DefaultTTL
	}
	if cfg.DefaultTTL > cfg.MaxTTL {
		return nil, fmt.Errorf("new CA: default TTL %s exceeds max TTL %s", cfg.DefaultTTL, cfg.MaxTTL)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Serial == nil {
		cfg.Serial = RandomSerial
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	signer := cfg.Signer.Cert()
	if !signer.IsCA || !signer.BasicConstraintsValid || signer.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("new CA: signing certificate %q is not a CA with keyCertSign", signer.Subject)
	}
	c := &CA{cfg: cfg, bundle: x509bundle.FromX509Authorities(cfg.TrustDomain, cfg.Roots)}
	for _, x := range cfg.Signer.Chain {
		if !isSelfSigned(x) {
			c.intermediates = append(c.intermediates, x)
		}
	}
	chains, err := signer.Verify(x509.VerifyOptions{
		Roots:         certPool(cfg.Roots),
		Intermediates: certPool(c.intermediates),
		CurrentTime:   cfg.Clock(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("new CA: signing certificate does not verify against the trust bundle: %w", err)
	}
	c.notAfter = signer.NotAfter
	for _, x := range chains[0] {
		if x.NotAfter.Before(c.notAfter) {
			c.notAfter = x.NotAfter
		}
	}
	return c, nil
}

// Sign builds, signs and verifies one X.509-SVID in a single path: the CSR
// is checked against the proven identity, the leaf gets the URI SAN,
// digitalSignature, serverAuth+clientAuth and CA=false, its NotAfter is
// capped at the CA's own, and the result must pass go-spiffe's x509svid
// verification against the bundle before it is returned.
func (c *CA) Sign(req Request) (*Issued, error) {
	if !req.ID.MemberOf(c.cfg.TrustDomain) {
		return nil, fmt.Errorf("sign %s: %w", req.ID, ErrWrongTrustDomain)
	}
	csr, err := checkCSR(req.CSR, req.ID, req.DNSNames)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", req.ID, err)
	}
	now := c.cfg.Clock()
	signer := c.cfg.Signer.Cert()
	if now.Before(signer.NotBefore) || !now.Before(c.notAfter) {
		return nil, fmt.Errorf("sign %s: %w", req.ID, ErrCAExpired)
	}
	ttl := req.TTL
	if ttl <= 0 {
		ttl = c.cfg.DefaultTTL
	}
	ttl = min(ttl, c.cfg.MaxTTL)
	notBefore := now.Add(-backdate)
	if notBefore.Before(signer.NotBefore) {
		notBefore = signer.NotBefore
	}
	notAfter := now.Add(ttl)
	if notAfter.After(c.notAfter) {
		notAfter = c.notAfter
	}
	serial, err := c.cfg.Serial()
	if err != nil {
		return nil, fmt.Errorf("sign %s: serial: %w", req.ID, err)
	}
	usage := x509.KeyUsageDigitalSignature
	if _, isRSA := csr.PublicKey.(*rsa.PublicKey); isRSA {
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		URIs:                  []*url.URL{req.ID.URL()},
		DNSNames:              req.DNSNames,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	der, err := x509.CreateCertificate(c.cfg.Rand, tmpl, signer, csr.PublicKey, c.cfg.Signer.Key)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", req.ID, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sign %s: parse issued certificate: %w", req.ID, err)
	}
	chain := append([]*x509.Certificate{leaf}, c.intermediates...)
	got, _, err := x509svid.Verify(chain, c.bundle, x509svid.WithTime(now))
	if err != nil {
		return nil, fmt.Errorf("sign %s: verify issued SVID: %w", req.ID, err)
	}
	if got != req.ID {
		return nil, fmt.Errorf("sign %s: issued SVID names %s", req.ID, got)
	}
	return &Issued{Chain: chain, Roots: c.Roots()}, nil
}

// Roots returns a copy of the trust bundle (all roots in an overlap window).
func (c *CA) Roots() []*x509.Certificate { return append([]*x509.Certificate(nil), c.cfg.Roots...) }

// Bundle is the trust bundle as a go-spiffe x509bundle, for verifying SVIDs.
func (c *CA) Bundle() *x509bundle.Bundle { return c.bundle.Clone() }

// TrustDomain is the CA's SPIFFE trust domain.
func (c *CA) TrustDomain() spiffeid.TrustDomain { return c.cfg.TrustDomain }

// SignerCert is the certificate that signs leaves (a root or intermediate).
func (c *CA) SignerCert() *x509.Certificate { return c.cfg.Signer.Cert() }

// NotAfter is when the CA stops being able to sign: the earliest NotAfter on
// its chain to a root. Leaves never outlive it; it is exported as a metric.
func (c *CA) NotAfter() time.Time { return c.notAfter }

// IsRefusal reports whether err means the request itself is unacceptable
// (as opposed to a CA-side failure).
func IsRefusal(err error) bool {
	for _, e := range []error{ErrBadCSR, ErrSANMismatch, ErrCARequested, ErrUnsupportedKey, ErrWrongTrustDomain} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func certPool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func isSelfSigned(c *x509.Certificate) bool {
	return c.CheckSignatureFrom(c) == nil
}
