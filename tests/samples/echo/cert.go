package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"time"
)

// serverCertificate loads --crt/--key for the --tls ports. Istio's echo
// image ships /cert.crt and /cert.key, which the conformance manifests
// name; ours does not, because no test verifies that certificate (the mesh
// tests never call the TLS port). So when neither file exists the server
// makes a self-signed certificate for hostname and says so (generated is
// true); one file without the other, or an unreadable file, is an error.
func serverCertificate(crt, key, hostname string, now time.Time) (cert tls.Certificate, generated bool, err error) {
	_, crtErr := os.Stat(crt)
	_, keyErr := os.Stat(key)
	if errors.Is(crtErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist) {
		c, err := selfSigned(hostname, now)
		return c, true, err
	}
	c, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("load --crt %s and --key %s: %w", crt, key, err)
	}
	return c, false, nil
}

// selfSigned is a P-256 certificate for hostname valid for a day.
func selfSigned(hostname string, now time.Time) (tls.Certificate, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hostname},
		DNSNames:     []string{hostname},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-sign: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}
