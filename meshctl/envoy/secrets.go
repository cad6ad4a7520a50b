package envoy

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
	"time"
)

// PEM is the secret's certificate chain (SVID) or trust bundle (CA).
func (s Secret) PEM() []byte {
	b := s.Secret
	switch {
	case b.TLSCertificate != nil:
		if c := b.TLSCertificate.CertificateChain; len(c.InlineBytes) > 0 {
			return c.InlineBytes
		} else {
			return []byte(c.InlineString)
		}
	case b.ValidationContext != nil:
		if c := b.ValidationContext.TrustedCA; len(c.InlineBytes) > 0 {
			return c.InlineBytes
		} else {
			return []byte(c.InlineString)
		}
	}
	return nil
}

// Kind is "Cert Chain" for an SVID and "CA" for a trust bundle.
func (s Secret) Kind() string {
	if s.Secret.ValidationContext != nil {
		return "CA"
	}
	return "Cert Chain"
}

// Certificates parses the secret's PEM certificates in order.
func (s Secret) Certificates() ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := s.PEM()
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("secret %s: parse certificate: %w", s.Name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// Cert summarises one certificate for humans and scripts.
type Cert struct {
	// SPIFFEID is the URI SAN of a workload SVID (empty for CAs).
	SPIFFEID  string    `json:"spiffeID,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	Issuer    string    `json:"issuer,omitempty"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	IsCA      bool      `json:"isCA"`
}

// Summarize describes a certificate. Serials print as colon-separated hex,
// as openssl does.
func Summarize(c *x509.Certificate) Cert {
	out := Cert{
		Subject: c.Subject.String(), Issuer: c.Issuer.String(), Serial: Serial(c),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), IsCA: c.IsCA,
	}
	for _, u := range c.URIs {
		if u.Scheme == "spiffe" {
			out.SPIFFEID = u.String()
			break
		}
	}
	return out
}

// Serial is the certificate's serial number in colon-separated hex.
func Serial(c *x509.Certificate) string {
	h := hex.EncodeToString(c.SerialNumber.Bytes())
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:min(i+2, len(h))])
	}
	return strings.Join(parts, ":")
}
