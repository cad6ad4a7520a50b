package injector

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
)

// Lifetimes of the injector's own PKI. The API server is the only client
// and trusts exactly the CA in caBundle, so a long-lived private CA is fine;
// the serving certificate is renewed from the same CA so caBundle rarely
// changes (a CA change briefly races the API server's view of caBundle).
const (
	CALifetime      = 10 * 365 * 24 * time.Hour // replaced when a third remains
	ServingLifetime = 365 * 24 * time.Hour      // renewed from the same CA when a third remains
	// backdate tolerates clock skew between the injector and the API server.
	backdate = 5 * time.Minute
)

// Keys of the Secret that stores the bundle (a kubernetes.io/tls Secret
// with the CA alongside, as cert-manager lays it out).
const (
	SecretCACert = "ca.crt"                // the CA, also the webhooks' caBundle
	SecretCAKey  = "ca.key"                // the CA key, so renewals keep caBundle valid
	SecretCert   = corev1.TLSCertKey       // serving certificate (file tls.crt in the cert dir)
	SecretKey    = corev1.TLSPrivateKeyKey // serving key (file tls.key in the cert dir)
)

// Bundle is the injector's CA and serving certificate, PEM-encoded.
type Bundle struct {
	CACert, CAKey []byte // the private CA; CACert is the caBundle
	Cert, Key     []byte // the serving certificate and its key
}

// BundleFromData reads a bundle from Secret data (missing keys stay empty,
// which PlanCerts treats as "generate").
func BundleFromData(data map[string][]byte) Bundle {
	return Bundle{CACert: data[SecretCACert], CAKey: data[SecretCAKey], Cert: data[SecretCert], Key: data[SecretKey]}
}

// Data is the bundle as Secret data.
func (b Bundle) Data() map[string][]byte {
	return map[string][]byte{SecretCACert: b.CACert, SecretCAKey: b.CAKey, SecretCert: b.Cert, SecretKey: b.Key}
}

// ServingDNSNames are the names the API server may dial the webhook Service
// by (it uses <svc>.<ns>.svc; the rest cover clients that use other forms).
func ServingDNSNames(service, namespace string) []string {
	return []string{
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
		service + "." + namespace,
		service,
	}
}

// CertAction is what PlanCerts decided.
type CertAction int

// The actions, from cheapest to most disruptive.
const (
	CertKeep  CertAction = iota // everything is valid
	CertRenew                   // issue a new serving certificate from the existing CA
	CertNewCA                   // generate a new CA and serving certificate (caBundle changes)
)

// String names the action in logs.
func (a CertAction) String() string {
	return [...]string{"keep", "renew", "new-ca"}[a]
}

// CertPlan is the outcome of PlanCerts.
type CertPlan struct {
	Action CertAction
	Reason string
	// RenewAt is when the current certificates become due for renewal
	// (meaningful for CertKeep): when less than a third of the lifetime of
	// the serving certificate or of the CA remains.
	RenewAt time.Time
}

// PlanCerts decides, from the stored bundle and the clock alone, whether the
// serving certificate can stay, must be renewed from the existing CA (due,
// wrong names, damaged) or whether the CA itself must be replaced (missing,
// damaged, due).
func PlanCerts(now time.Time, b Bundle, dnsNames []string) CertPlan {
	ca, err := parseKeyPair(b.CACert, b.CAKey)
	if err != nil {
		return CertPlan{Action: CertNewCA, Reason: "no usable CA: " + err.Error()}
	}
	if !ca.IsCA {
		return CertPlan{Action: CertNewCA, Reason: "stored CA certificate is not a CA"}
	}
	if at := renewAt(ca); !now.Before(at) {
		return CertPlan{Action: CertNewCA, Reason: fmt.Sprintf("CA renewal due since %s", at.Format(time.RFC3339))}
	}
	leaf, err := parseKeyPair(b.Cert, b.Key)
	if err != nil {
		return CertPlan{Action: CertRenew, Reason: "no usable serving certificate: " + err.Error()}
	}
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		return CertPlan{Action: CertRenew, Reason: "serving certificate not signed by the stored CA"}
	}
	if !slices.Equal(leaf.DNSNames, dnsNames) {
		return CertPlan{Action: CertRenew, Reason: fmt.Sprintf("serving certificate names %v, want %v", leaf.DNSNames, dnsNames)}
	}
	if now.Before(leaf.NotBefore) {
		return CertPlan{Action: CertRenew, Reason: "serving certificate not valid yet (clock went back)"}
	}
	if at := renewAt(leaf); !now.Before(at) {
		return CertPlan{Action: CertRenew, Reason: fmt.Sprintf("serving certificate renewal due since %s", at.Format(time.RFC3339))}
	}
	return CertPlan{Action: CertKeep, Reason: "certificates valid", RenewAt: minTime(renewAt(leaf), renewAt(ca))}
}

// Execute carries out the plan and returns the new bundle (b itself for
// CertKeep).
func (p CertPlan) Execute(now time.Time, b Bundle, dnsNames []string) (Bundle, error) {
	switch p.Action {
	case CertKeep:
		return b, nil
	case CertNewCA:
		caCert, caKey, err := newCA(now)
		if err != nil {
			return Bundle{}, err
		}
		b = Bundle{CACert: caCert, CAKey: caKey}
	}
	cert, key, err := issueServing(now, b.CACert, b.CAKey, dnsNames)
	if err != nil {
		return Bundle{}, err
	}
	b.Cert, b.Key = cert, key
	return b, nil
}

// WebhooksNeedingCABundle lists the webhooks of cfg whose caBundle is not
// ca, i.e. those to patch. A re-applied manifest (no caBundle) shows up here.
func WebhooksNeedingCABundle(cfg *admissionregistrationv1.MutatingWebhookConfiguration, ca []byte) []string {
	var names []string
	for _, w := range cfg.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, ca) {
			names = append(names, w.Name)
		}
	}
	return names
}

func renewAt(c *x509.Certificate) time.Time {
	life := c.NotAfter.Sub(c.NotBefore)
	return c.NotAfter.Add(-life / 3)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// parseKeyPair parses a PEM certificate and checks the PEM key matches it.
func parseKeyPair(certPEM, keyPEM []byte) (*x509.Certificate, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("private key does not match certificate")
	}
	return cert, nil
}

func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM private key")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key type %T cannot sign", key)
	}
	return signer, nil
}

func newCA(now time.Time) (certPEM, keyPEM []byte, err error) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "weft-injector-ca", Organization: []string{"weft"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return sign(tmpl, nil, nil)
}

func issueServing(now time.Time, caCertPEM, caKeyPEM []byte, dnsNames []string) (certPEM, keyPEM []byte, err error) {
	ca, err := parseCert(caCertPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("issue serving certificate: %w", err)
	}
	caKey, err := parseKey(caKeyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("issue serving certificate: %w", err)
	}
	notAfter := now.Add(ServingLifetime)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: dnsNames[0]},
		DNSNames:    dnsNames,
		NotBefore:   now.Add(-backdate),
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	return sign(tmpl, ca, caKey)
}

// sign generates a P-256 key for tmpl and signs it with parentKey (self-
// signed when parent is nil).
func sign(tmpl, parent *x509.Certificate, parentKey crypto.Signer) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("generate serial: %w", err)
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
