// Package caserver is pilot's CA endpoint (port 15012, TLS): the gRPC
// weft.ca.v1.CertificateService. A caller proves its identity with its pod's
// projected ServiceAccount token (audience weft-ca); the server validates it
// (TokenReview + live pod binding check), derives the SPIFFE ID
// spiffe://<td>/ns/<ns>/sa/<sa> (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md)
// from the token alone, rate-limits per identity and has package ca sign an
// X.509-SVID. Every refusal has a Reason that is logged, returned and
// counted.
package caserver

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	cav1 "github.com/weftmesh/weft/api/ca/v1"
	"github.com/weftmesh/weft/pilot/ca"
	"github.com/weftmesh/weft/pilot/identity"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// CASource hands out the CA that signs now; rootstore.Store implements it
// and swaps the CA on rotation.
type CASource interface {
	CA() *ca.CA
}

// Config configures a Server.
type Config struct {
	// CA and Authenticator are required.
	CA            CASource
	Authenticator Authenticator
	// Rate and Burst are each identity's CSR budget (default 10/s, burst 50:
	// a rollout of many replicas of one ServiceAccount is one identity).
	// rate.Inf disables limiting.
	Rate  rate.Limit
	Burst int
	// MaxIdentities bounds the limiter's memory (default 65536).
	MaxIdentities int
	// AuthCacheTTL caches successful token reviews (default 10s; negative
	// disables). Pod bindings are always checked live.
	AuthCacheTTL time.Duration
	// Clock defaults to time.Now.
	Clock func() time.Time
	// MeterProvider defaults to the global one.
	MeterProvider metric.MeterProvider
	// TracerProvider creates the SERVER span of every call and SpanSign;
	// it defaults to the global one (a no-op unless telemetry.Setup
	// installed an exporter).
	TracerProvider trace.TracerProvider
}

// Server implements cav1.CertificateServiceServer.
type Server struct {
	cav1.UnimplementedCertificateServiceServer
	cfg     Config
	limiter *limiter
	auth    *authCache
	metrics *metrics
	tracer  trace.Tracer
}

// New validates cfg and fills defaults.
func New(cfg Config) (*Server, error) {
	if cfg.CA == nil || cfg.Authenticator == nil {
		return nil, fmt.Errorf("caserver: CA and Authenticator are required")
	}
	if cfg.Rate == 0 {
		cfg.Rate = 10
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 50
	}
	if cfg.MaxIdentities <= 0 {
		cfg.MaxIdentities = 65536
	}
	if cfg.AuthCacheTTL == 0 {
		cfg.AuthCacheTTL = 10 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = otel.GetMeterProvider()
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	m, err := newMetrics(cfg.MeterProvider)
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg:     cfg,
		limiter: newLimiter(cfg.Rate, cfg.Burst, cfg.MaxIdentities),
		auth:    newAuthCache(cfg.AuthCacheTTL, cfg.MaxIdentities),
		metrics: m,
		tracer:  cfg.TracerProvider.Tracer(TracerName),
	}, nil
}

// CreateCertificate authenticates the caller, checks its budget and the
// pod binding, and signs the CSR for the identity in the token.
func (s *Server) CreateCertificate(ctx context.Context, req *cav1.CreateCertificateRequest) (*cav1.CreateCertificateResponse, error) {
	start := s.cfg.Clock()
	ctx, span := s.startSign(ctx)
	log := logr.FromContextOrDiscard(ctx).WithName("ca")
	if p, ok := peer.FromContext(ctx); ok {
		log = log.WithValues("peer", p.Addr.String())
	}
	issued, w, err := s.create(ctx, req, start)
	if err != nil {
		r, cause := reasonOf(err), err
		var re *RefusalError
		if errors.As(err, &re) {
			cause = re.Err
		}
		s.metrics.recordRefused(ctx, r)
		log.Info("refused CSR", "reason", string(r), "identity", w.String(), "error", cause.Error())
		msg := fmt.Sprintf("%s: %v", r, cause)
		endSign(span, idOf(w), "", r, errors.New(msg))
		return nil, status.Error(r.Code(), msg)
	}
	s.metrics.recordSigned(ctx, s.cfg.Clock().Sub(start))
	leaf := issued.Leaf()
	endSign(span, idOf(w), leaf.SerialNumber.Text(16), "", nil)
	log.Info("signed CSR", "identity", w.String(), "serial", leaf.SerialNumber.Text(16), "notAfter", leaf.NotAfter)
	return &cav1.CreateCertificateResponse{
		CertChainDer:   rawCerts(issued.Chain),
		TrustBundleDer: rawCerts(issued.Roots),
	}, nil
}

func (s *Server) create(ctx context.Context, req *cav1.CreateCertificateRequest, now time.Time) (*ca.Issued, identity.Workload, error) {
	token, err := bearerToken(ctx)
	if err != nil {
		return nil, identity.Workload{}, err
	}
	caller, cached := s.auth.get(token, now)
	if !cached {
		if caller, err = s.cfg.Authenticator.Authenticate(ctx, token); err != nil {
			return nil, identity.Workload{}, err
		}
		s.auth.put(token, caller, now)
	}
	trace.SpanFromContext(ctx).SetAttributes(AttrAuthCached.Bool(cached),
		AttrCallerPod.String(caller.Namespace+"/"+caller.PodName))
	authority := s.cfg.CA.CA()
	if authority == nil {
		return nil, identity.Workload{}, refuse(ReasonCAUnavailable, "CA not loaded yet")
	}
	w, err := identity.New(authority.TrustDomain(), caller.Namespace, caller.ServiceAccount)
	if err != nil {
		return nil, identity.Workload{}, refuse(ReasonNotServiceAccount, "identity: %w", err)
	}
	if !s.limiter.allow(w.String(), now) {
		return nil, w, refuse(ReasonRateLimited, "more than %v CSRs/s (burst %d)", s.cfg.Rate, s.cfg.Burst)
	}
	if err := s.cfg.Authenticator.CheckBinding(ctx, caller); err != nil {
		return nil, w, err
	}
	issued, err := authority.Sign(ca.Request{
		CSR: req.GetCsrDer(),
		ID:  w.ID(),
		TTL: requestedTTL(req.GetValiditySeconds()),
	})
	if err != nil {
		return nil, w, err
	}
	return issued, w, nil
}

// idOf is w's SPIFFE ID, empty before the caller was authenticated.
func idOf(w identity.Workload) string {
	if w == (identity.Workload{}) {
		return ""
	}
	return w.ID().String()
}

// bearerToken reads "authorization: Bearer <token>" from the call metadata.
func bearerToken(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return "", refuse(ReasonMissingToken, "want one authorization header, got %d", len(vals))
	}
	token, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return "", refuse(ReasonMissingToken, "authorization header is not a bearer token")
	}
	return strings.TrimSpace(token), nil
}

func rawCerts(certs []*x509.Certificate) [][]byte {
	out := make([][]byte, len(certs))
	for i, c := range certs {
		out[i] = c.Raw
	}
	return out
}

// requestedTTL converts validity_seconds without overflow; the CA caps it.
func requestedTTL(secs int64) time.Duration {
	const maxSecs = int64(366 * 24 * 60 * 60)
	if secs <= 0 {
		return 0
	}
	return time.Duration(min(secs, maxSecs)) * time.Second
}
