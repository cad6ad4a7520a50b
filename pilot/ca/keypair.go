package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// KeyPair is a CA's signing material: Chain[0] is the certificate that
// signs, the entries after it are its issuers up to a root (a self-signed
// root is a one-entry chain), and Key is Chain[0]'s private key.
type KeyPair struct {
	Chain []*x509.Certificate
	Key   crypto.Signer
}

// Cert is the signing certificate, or nil for an empty KeyPair.
func (k KeyPair) Cert() *x509.Certificate {
	if len(k.Chain) == 0 {
		return nil
	}
	return k.Chain[0]
}

// SerialSource returns a fresh certificate serial number. RFC 5280 §4.1.2.2
// requires positive serials unique per CA; the CA takes it as a dependency so
// tests can make certificates deterministic.
type SerialSource func() (*big.Int, error)

// RandomSerial is the production SerialSource: 128 random bits, as the CA/B
// Forum baseline requires at least 64 bits of entropy.
func RandomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("random serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// RootConfig describes a self-signed root to create.
type RootConfig struct {
	// TrustDomain goes into the root's URI SAN, as the X509-SVID spec allows
	// for signing certificates.
	TrustDomain spiffeid.TrustDomain
	// TTL is the root's lifetime; DefaultRootTTL when zero.
	TTL time.Duration
	// Clock and Serial default to time.Now and RandomSerial.
	Clock  func() time.Time
	Serial SerialSource
}

// DefaultRootTTL is the lifetime of a generated root: ten years, as Istio's
// self-signed root, so rotation is a rare, planned event.
const DefaultRootTTL = 10 * 365 * 24 * time.Hour

// backdate tolerates clock skew between the CA and verifiers.
const backdate = time.Minute

// NewRoot generates an ECDSA P-256 self-signed root CA for the trust domain.
// It is used on pilot's first start and for every root rotation.
func NewRoot(cfg RootConfig) (KeyPair, error) {
	if cfg.TrustDomain.IsZero() {
		return KeyPair{}, fmt.Errorf("new root: empty trust domain")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultRootTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Serial == nil {
		cfg.Serial = RandomSerial
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate root key: %w", err)
	}
	serial, err := cfg.Serial()
	if err != nil {
		return KeyPair{}, fmt.Errorf("root serial: %w", err)
	}
	now := cfg.Clock()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"Weft"},
			CommonName:   "Weft Root CA " + now.UTC().Format("2006-01-02T15:04:05Z"),
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(cfg.TTL),
		URIs:                  []*url.URL{cfg.TrustDomain.ID().URL()},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("self-sign root: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return KeyPair{}, fmt.Errorf("parse root: %w", err)
	}
	return KeyPair{Chain: []*x509.Certificate{cert}, Key: key}, nil
}

// EncodeCerts PEM-encodes certificates in order, the format of the
// weft-root-cert ConfigMap and of the CA Secret.
func EncodeCerts(certs []*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		// pem.Encode into a bytes.Buffer cannot fail.
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}); err != nil {
			panic(err)
		}
	}
	return buf.Bytes()
}

// ParseCerts decodes every CERTIFICATE block of a PEM bundle. It refuses an
// empty bundle and any non-certificate block, so a truncated or mixed-up
// Secret is noticed instead of trusted.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := bytes.TrimSpace(data); len(rest) > 0; rest = bytes.TrimSpace(rest) {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("parse certificates: trailing data is not PEM")
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("parse certificates: unexpected PEM block %q", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("parse certificates: no certificate found")
	}
	return certs, nil
}

// EncodeKey PEM-encodes a private key as PKCS#8 ("PRIVATE KEY"), the form
// Envoy and the SPIFFE Workload API accept.
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey decodes a PEM private key in PKCS#8, SEC 1 (EC) or PKCS#1 (RSA)
// form, the forms user-provided cacerts Secrets come in.
func ParseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("parse private key: no PEM block")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("parse private key: unsupported type %T", key)
	}
}

// ParseKeyPair builds a KeyPair from PEM: the signing certificate, its
// issuers (optional, may repeat the signing certificate first as Istio's
// cert-chain.pem does) and its key. It checks that the key belongs to the
// certificate.
func ParseKeyPair(certPEM, chainPEM, keyPEM []byte) (KeyPair, error) {
	certs, err := ParseCerts(certPEM)
	if err != nil {
		return KeyPair{}, fmt.Errorf("signing certificate: %w", err)
	}
	if len(bytes.TrimSpace(chainPEM)) > 0 {
		issuers, err := ParseCerts(chainPEM)
		if err != nil {
			return KeyPair{}, fmt.Errorf("certificate chain: %w", err)
		}
		for _, c := range issuers {
			if !containsCert(certs, c) {
				certs = append(certs, c)
			}
		}
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return KeyPair{}, err
	}
	kp := KeyPair{Chain: certs, Key: key}
	if err := checkKeyMatches(kp); err != nil {
		return KeyPair{}, err
	}
	return kp, nil
}

func checkKeyMatches(kp KeyPair) error {
	if kp.Cert() == nil || kp.Key == nil {
		return fmt.Errorf("signing key pair is incomplete")
	}
	pub, ok := kp.Key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(kp.Cert().PublicKey) {
		return fmt.Errorf("private key does not match signing certificate %q", kp.Cert().Subject)
	}
	return nil
}

func containsCert(certs []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range certs {
		if x.Equal(c) {
			return true
		}
	}
	return false
}
