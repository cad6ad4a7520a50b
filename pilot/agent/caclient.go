package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	cav1 "github.com/weftmesh/weft/api/ca/v1"
	"github.com/weftmesh/weft/pilot/ca"
	"github.com/weftmesh/weft/pilot/identity"
	"github.com/weftmesh/weft/pilot/telemetry"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// fetchSVID generates a fresh P-256 key, sends a CSR for the pod's SPIFFE
// ID with the projected token to pilot, and checks the answer: the leaf
// certifies our key, names our ID and verifies against the returned bundle.
// known is the bundle the agent already holds (trusted for pilot's TLS
// besides the root-cert file, which may lag during a rotation).
func fetchSVID(ctx context.Context, cfg *Config, known []*x509.Certificate) (*SVID, error) {
	token, err := os.ReadFile(cfg.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	tok := strings.TrimSpace(string(token))
	id, err := idFromToken(cfg.TrustDomain, tok)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{id.URL()}}, key)
	if err != nil {
		return nil, fmt.Errorf("create CSR: %w", err)
	}
	roots, err := caRoots(cfg.CARootFile, known)
	if err != nil {
		return nil, err
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			RootCAs: roots, ServerName: cfg.CAServerName, MinVersion: tls.VersionTLS12,
		})),
		grpc.WithPerRPCCredentials(bearer(tok)),
		// pilot continues the fetch span's trace; the fetch counter and
		// pilot's weft_ca_* metrics count these calls.
		telemetry.GRPCClientTracing(cfg.TracerProvider),
	}, cfg.DialOptions...)
	conn, err := grpc.NewClient(cfg.CAAddress, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial CA %s: %w", cfg.CAAddress, err)
	}
	defer conn.Close()
	resp, err := cav1.NewCertificateServiceClient(conn).CreateCertificate(ctx, &cav1.CreateCertificateRequest{
		CsrDer: csr, ValiditySeconds: int64(cfg.CertTTL.Seconds()),
	})
	if err != nil {
		return nil, fmt.Errorf("create certificate for %s: %w", id, err)
	}
	receivedAt := cfg.Clock()
	chain, err := parseDER(resp.GetCertChainDer())
	if err != nil {
		return nil, fmt.Errorf("certificate chain: %w", err)
	}
	bundle, err := parseDER(resp.GetTrustBundleDer())
	if err != nil {
		return nil, fmt.Errorf("trust bundle: %w", err)
	}
	if !key.PublicKey.Equal(chain[0].PublicKey) {
		return nil, fmt.Errorf("CA certified a different key")
	}
	got, _, err := x509svid.Verify(chain, x509bundle.FromX509Authorities(cfg.TrustDomain, bundle), x509svid.WithTime(receivedAt))
	if err != nil {
		return nil, fmt.Errorf("verify SVID: %w", err)
	}
	if got != id {
		return nil, fmt.Errorf("CA issued %s, want %s", got, id)
	}
	return &SVID{ID: id, Chain: chain, Key: key, Bundle: bundle, ReceivedAt: receivedAt}, nil
}

// idFromToken reads namespace and ServiceAccount from the token's subject
// (system:serviceaccount:<ns>:<sa>) to fill the CSR. The claims are not
// verified here: the CA derives the identity itself and refuses a CSR that
// does not match, so a wrong guess only fails.
func idFromToken(td spiffeid.TrustDomain, token string) (spiffeid.ID, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return spiffeid.ID{}, fmt.Errorf("token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("decode token claims: %w", err)
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return spiffeid.ID{}, fmt.Errorf("parse token claims: %w", err)
	}
	rest, ok := strings.CutPrefix(claims.Sub, "system:serviceaccount:")
	ns, sa, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return spiffeid.ID{}, fmt.Errorf("token subject %q is not a service account", claims.Sub)
	}
	w, err := identity.New(td, ns, sa)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("token subject: %w", err)
	}
	return w.ID(), nil
}

// caRoots is the root-cert file (if present) plus the bundle already held.
func caRoots(file string, known []*x509.Certificate) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	data, err := os.ReadFile(file)
	switch {
	case err == nil:
		certs, err := ca.ParseCerts(data)
		if err != nil {
			return nil, fmt.Errorf("CA root file %s: %w", file, err)
		}
		for _, c := range certs {
			pool.AddCert(c)
			n++
		}
	case !errors.Is(err, fs.ErrNotExist) || len(known) == 0:
		return nil, fmt.Errorf("read CA root file: %w", err)
	}
	for _, c := range known {
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("no roots to verify the CA with")
	}
	return pool, nil
}

func parseDER(ders [][]byte) ([]*x509.Certificate, error) {
	if len(ders) == 0 {
		return nil, fmt.Errorf("empty")
	}
	out := make([]*x509.Certificate, 0, len(ders))
	for _, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// bearer sends the token as "authorization: Bearer", only over TLS.
type bearer string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity keeps the token off plaintext connections.
func (bearer) RequireTransportSecurity() bool { return true }
