package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// The sentinel errors of Sign tell the caller why a request was refused, so
// the CA server can map each one to a refusal reason, a gRPC status and a
// metric label without parsing strings.
var (
	// ErrBadCSR: the CSR is not valid DER PKCS#10 or its self-signature
	// does not verify (the caller does not hold the key).
	ErrBadCSR = errors.New("malformed certificate signing request")
	// ErrSANMismatch: the CSR asks for SANs other than exactly the identity
	// the caller proved (extra URIs, DNS names, IPs, e-mails, other names).
	ErrSANMismatch = errors.New("CSR subject alternative names do not match the caller's identity")
	// ErrCARequested: the CSR asks for CA=true or certificate-signing key
	// usage; X509-SVID leaves must not be able to sign.
	ErrCARequested = errors.New("CSR requests a CA certificate")
	// ErrUnsupportedKey: the CSR key is not ECDSA P-256/P-384 or RSA 2048–4096.
	ErrUnsupportedKey = errors.New("unsupported CSR public key")
	// ErrWrongTrustDomain: the identity is not in the CA's trust domain.
	ErrWrongTrustDomain = errors.New("identity outside the CA's trust domain")
	// ErrCAExpired: the signing certificate is no longer valid.
	ErrCAExpired = errors.New("signing certificate is not valid now")
)

var (
	oidSubjectAltName   = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
)

// checkCSR parses the CSR and checks that it proves possession of its key,
// names exactly id (plus dnsNames, which only pilot itself passes) and does
// not ask to be a CA.
func checkCSR(der []byte, id spiffeid.ID, dnsNames []string) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrBadCSR, err)
	}
	if err := checkKey(csr.PublicKey); err != nil {
		return nil, err
	}
	if err := checkCSRExtensions(csr); err != nil {
		return nil, err
	}
	if len(csr.URIs) != 1 || csr.URIs[0].String() != id.String() {
		return nil, fmt.Errorf("%w: want URI %s, got %v", ErrSANMismatch, id, csr.URIs)
	}
	if len(csr.IPAddresses) > 0 || len(csr.EmailAddresses) > 0 {
		return nil, fmt.Errorf("%w: IP or e-mail SANs", ErrSANMismatch)
	}
	want := slices.Sorted(slices.Values(dnsNames))
	got := slices.Sorted(slices.Values(csr.DNSNames))
	if !slices.Equal(want, got) {
		return nil, fmt.Errorf("%w: want DNS names %v, got %v", ErrSANMismatch, want, got)
	}
	return csr, nil
}

func checkKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return fmt.Errorf("%w: ECDSA curve %s", ErrUnsupportedKey, k.Curve.Params().Name)
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n >= 2048 && n <= 4096 {
			return nil
		}
		return fmt.Errorf("%w: RSA %d bits", ErrUnsupportedKey, k.N.BitLen())
	default:
		return fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
}

// checkCSRExtensions refuses CA requests and SAN entries of kinds Go's parser
// skips (otherName, directoryName, …): counting the raw GeneralNames makes
// sure every requested name was compared.
func checkCSRExtensions(csr *x509.CertificateRequest) error {
	sans := 0
	for _, ext := range csr.Extensions {
		switch {
		case ext.Id.Equal(oidBasicConstraints):
			var bc struct {
				IsCA       bool `asn1:"optional"`
				MaxPathLen int  `asn1:"optional,default:-1"`
			}
			if _, err := asn1.Unmarshal(ext.Value, &bc); err != nil {
				return fmt.Errorf("%w: basic constraints: %w", ErrBadCSR, err)
			}
			if bc.IsCA {
				return ErrCARequested
			}
		case ext.Id.Equal(oidKeyUsage):
			var bits asn1.BitString
			if _, err := asn1.Unmarshal(ext.Value, &bits); err != nil {
				return fmt.Errorf("%w: key usage: %w", ErrBadCSR, err)
			}
			// keyCertSign is bit 5, cRLSign bit 6 (RFC 5280 §4.2.1.3).
			if bits.At(5) == 1 || bits.At(6) == 1 {
				return fmt.Errorf("%w: certificate-signing key usage", ErrCARequested)
			}
		case ext.Id.Equal(oidSubjectAltName):
			sans++
			n, err := countGeneralNames(ext.Value)
			if err != nil {
				return fmt.Errorf("%w: subject alternative names: %w", ErrBadCSR, err)
			}
			if parsed := len(csr.URIs) + len(csr.DNSNames) + len(csr.IPAddresses) + len(csr.EmailAddresses); n != parsed {
				return fmt.Errorf("%w: %d names of unsupported kinds", ErrSANMismatch, n-parsed)
			}
		}
	}
	if sans > 1 {
		return fmt.Errorf("%w: %d SAN extensions", ErrSANMismatch, sans)
	}
	return nil
}

func countGeneralNames(der []byte) (int, error) {
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return 0, err
	}
	if len(rest) > 0 || !seq.IsCompound || seq.Tag != asn1.TagSequence {
		return 0, fmt.Errorf("not a GeneralNames sequence")
	}
	n := 0
	for inner := seq.Bytes; len(inner) > 0; n++ {
		var name asn1.RawValue
		inner, err = asn1.Unmarshal(inner, &name)
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}
