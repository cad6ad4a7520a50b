package ca

import (
	"fmt"
	"time"
)

// Keys of the CA Secret's data. The first four follow Istio's "cacerts"
// plug-in CA layout, so an operator can bring a root or intermediate the
// same way; the others hold rotation state of a self-signed root.
const (
	KeyCACert      = "ca-cert.pem"      // signing certificate
	KeyCAKey       = "ca-key.pem"       // its private key
	KeyCertChain   = "cert-chain.pem"   // issuers of ca-cert.pem up to the root
	KeyRootCert    = "root-cert.pem"    // trust bundle: every trusted root
	KeyNextCACert  = "next-ca-cert.pem" // next root during rotation step 1
	KeyNextCAKey   = "next-ca-key.pem"  // its private key
	KeyNextSince   = "next-since"       // RFC 3339 time the next root was published
	KeyRetireAfter = "retire-at"        // RFC 3339 time retired roots are dropped
)

// MarshalData encodes an Authority as Secret data. The caller stores it in a
// Secret; this package stays free of Kubernetes types.
func (a Authority) MarshalData() (map[string][]byte, error) {
	key, err := EncodeKey(a.Signer.Key)
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{
		KeyCACert:   EncodeCerts(a.Signer.Chain[:1]),
		KeyCAKey:    key,
		KeyRootCert: EncodeCerts(a.Roots),
	}
	if len(a.Signer.Chain) > 1 {
		data[KeyCertChain] = EncodeCerts(a.Signer.Chain[1:])
	}
	if a.Next != nil {
		nextKey, err := EncodeKey(a.Next.Key)
		if err != nil {
			return nil, err
		}
		data[KeyNextCACert] = EncodeCerts(a.Next.Chain)
		data[KeyNextCAKey] = nextKey
		data[KeyNextSince] = []byte(a.NextSince.UTC().Format(time.RFC3339))
	}
	if !a.RetireAt.IsZero() {
		data[KeyRetireAfter] = []byte(a.RetireAt.UTC().Format(time.RFC3339))
	}
	return data, nil
}

// UnmarshalAuthority decodes Secret data written by MarshalData or by an
// operator following the cacerts layout (ca-cert.pem, ca-key.pem,
// root-cert.pem, optional cert-chain.pem).
func UnmarshalAuthority(data map[string][]byte) (Authority, error) {
	signer, err := ParseKeyPair(data[KeyCACert], data[KeyCertChain], data[KeyCAKey])
	if err != nil {
		return Authority{}, fmt.Errorf("%s/%s: %w", KeyCACert, KeyCAKey, err)
	}
	roots, err := ParseCerts(data[KeyRootCert])
	if err != nil {
		return Authority{}, fmt.Errorf("%s: %w", KeyRootCert, err)
	}
	a := Authority{Signer: signer, Roots: roots}
	if len(data[KeyNextCACert]) > 0 {
		next, err := ParseKeyPair(data[KeyNextCACert], nil, data[KeyNextCAKey])
		if err != nil {
			return Authority{}, fmt.Errorf("%s: %w", KeyNextCACert, err)
		}
		if a.NextSince, err = time.Parse(time.RFC3339, string(data[KeyNextSince])); err != nil {
			return Authority{}, fmt.Errorf("%s: %w", KeyNextSince, err)
		}
		a.Next = &next
	}
	if v := data[KeyRetireAfter]; len(v) > 0 {
		if a.RetireAt, err = time.Parse(time.RFC3339, string(v)); err != nil {
			return Authority{}, fmt.Errorf("%s: %w", KeyRetireAfter, err)
		}
	}
	return a, nil
}

// NewSelfSigned is the Authority of a fresh self-signed root: it signs and
// is the only trusted root.
func NewSelfSigned(cfg RootConfig) (Authority, error) {
	root, err := NewRoot(cfg)
	if err != nil {
		return Authority{}, err
	}
	return Authority{Signer: root, Roots: root.Chain[:1]}, nil
}
