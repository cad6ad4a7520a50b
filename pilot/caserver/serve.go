package caserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/go-logr/logr"
	cav1 "github.com/weftmesh/weft/api/ca/v1"
	"github.com/weftmesh/weft/pilot/ca"
	"github.com/weftmesh/weft/pilot/identity"
	"github.com/weftmesh/weft/pilot/telemetry"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// Names of pilot's own identity: the CA endpoint's serving certificate
// carries the Service DNS names agents dial and pilot's SPIFFE ID.
const (
	PilotNamespace      = "weft-system"
	PilotServiceAccount = "weft-pilot"
	PilotService        = "weft-pilot"
)

// ServingNames are the DNS SANs of pilot's CA endpoint: the weft-pilot
// Service in pilot's namespace (PilotNamespace if empty), short and fully
// qualified with the cluster domain.
func ServingNames(namespace, clusterDomain string) []string {
	if namespace == "" {
		namespace = PilotNamespace
	}
	base := PilotService + "." + namespace + ".svc"
	return []string{base, base + "." + clusterDomain}
}

// ServingCert issues and renews the CA endpoint's TLS certificate from the
// CA itself, so agents verify pilot with the same trust bundle they get
// their SVIDs from. It renews at half of the lifetime or when the CA's
// signer changes (root rotation).
type ServingCert struct {
	CA CASource
	// DNSNames of the certificate (see ServingNames).
	DNSNames []string
	// Namespace of pilot, for its SPIFFE ID (PilotNamespace if empty).
	Namespace string
	Clock     func() time.Time

	mu     sync.Mutex
	cert   *tls.Certificate
	signer *x509.Certificate
	renew  time.Time
}

// GetCertificate is tls.Config.GetCertificate.
func (s *ServingCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clock := s.Clock
	if clock == nil {
		clock = time.Now
	}
	authority := s.CA.CA()
	if authority == nil {
		return nil, fmt.Errorf("serving certificate: CA not loaded yet")
	}
	now := clock()
	if s.cert != nil && now.Before(s.renew) && s.signer.Equal(authority.SignerCert()) {
		return s.cert, nil
	}
	cert, err := s.issue(authority)
	if err != nil {
		return nil, err
	}
	leaf := cert.Leaf
	s.cert, s.signer = cert, authority.SignerCert()
	s.renew = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	return cert, nil
}

func (s *ServingCert) issue(authority *ca.CA) (*tls.Certificate, error) {
	ns := s.Namespace
	if ns == "" {
		ns = PilotNamespace
	}
	w, err := identity.New(authority.TrustDomain(), ns, PilotServiceAccount)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("serving certificate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		URIs: []*url.URL{w.ID().URL()}, DNSNames: s.DNSNames,
	}, key)
	if err != nil {
		return nil, fmt.Errorf("serving certificate CSR: %w", err)
	}
	issued, err := authority.Sign(ca.Request{CSR: csr, ID: w.ID(), DNSNames: s.DNSNames})
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	return &tls.Certificate{Certificate: rawCerts(issued.Chain), PrivateKey: key, Leaf: issued.Leaf()}, nil
}

// NewGRPCServer builds the TLS gRPC server of the CA endpoint with srv
// registered. Messages are small (a CSR), so receive size is capped. Calls
// are traced with srv's TracerProvider (see SpanSign).
func NewGRPCServer(srv *Server, cert *ServingCert, opts ...grpc.ServerOption) *grpc.Server {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cert.GetCertificate}
	opts = append([]grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(tlsCfg)),
		// Continues the agent's trace; weft_ca_* metrics count the CSRs.
		telemetry.GRPCServerTracing(srv.cfg.TracerProvider),
		grpc.MaxRecvMsgSize(64 << 10),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second}),
	}, opts...)
	g := grpc.NewServer(opts...)
	cav1.RegisterCertificateServiceServer(g, srv)
	return g
}

// Serve runs g on lis until ctx is done, then stops gracefully (bounded).
// The ctx logger is attached to every call so refusals are logged with it.
func Serve(ctx context.Context, g *grpc.Server, lis net.Listener) error {
	log := logr.FromContextOrDiscard(ctx)
	log.Info("serving CA", "addr", lis.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve CA: %w", err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		g.Stop()
	}
	return nil
}

// LoggerInterceptor puts logger into every call's context, since gRPC
// handler contexts do not inherit the serving context.
func LoggerInterceptor(logger logr.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return h(logr.NewContext(ctx, logger), req)
	}
}
