package xds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
)

// Authenticator says which workload is on the other end of a stream. It is
// an interface so tests can drive authorisation without TLS; production
// uses TLSAuthenticator.
type Authenticator interface {
	// Authenticate returns the SPIFFE ID the peer proved, or an error if
	// it proved none.
	Authenticate(ctx context.Context) (spiffeid.ID, error)
}

// TLSAuthenticator reads the SPIFFE ID from the URI SAN of the client's
// X.509-SVID (https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md).
// It trusts only chains the TLS handshake verified, so the server's TLS
// config must use tls.RequireAndVerifyClientCert with the mesh roots.
type TLSAuthenticator struct{}

// Authenticate implements Authenticator.
func (TLSAuthenticator) Authenticate(ctx context.Context) (spiffeid.ID, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return spiffeid.ID{}, errors.New("no peer information")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return spiffeid.ID{}, errors.New("connection is not TLS")
	}
	if len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return spiffeid.ID{}, errors.New("no verified client certificate")
	}
	id, err := x509svid.IDFromCert(info.State.VerifiedChains[0][0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("client certificate is not an X.509-SVID: %w", err)
	}
	return id, nil
}

// ServerTLSConfig is a TLS config for the xDS server that fits
// TLSAuthenticator: it presents getCert's certificate and requires client
// certificates that chain to roots(), both read per handshake so CA and
// certificate rotation take effect without a restart.
func ServerTLSConfig(getCert func() (*tls.Certificate, error), roots func() *x509.CertPool) *tls.Config {
	base := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert,
		NextProtos: []string{"h2"},
	}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert, err := getCert()
		if err != nil {
			return nil, fmt.Errorf("xds serving certificate: %w", err)
		}
		c := base.Clone()
		c.GetConfigForClient = nil
		c.Certificates = []tls.Certificate{*cert}
		c.ClientCAs = roots()
		return c, nil
	}
	return base
}

// authorize checks that peer may receive the config of the pod named by
// nodeID: the pod must exist (waiting up to PodWait for the informer) and
// run as the service account the peer's SVID names.
func (s *Server) authorize(ctx context.Context, id spiffeid.ID, nodeID string) (*model.Pod, error) {
	ns, name, err := generator.ParseNodeID(nodeID)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	key := model.Key{Namespace: ns, Name: name}
	pod, ok := s.cfg.Model.Pod(key)
	for deadline := time.Now().Add(s.cfg.PodWait); !ok && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-time.After(100 * time.Millisecond):
		}
		pod, ok = s.cfg.Model.Pod(key)
	}
	if !ok {
		return nil, status.Errorf(codes.PermissionDenied, "node %q: pod %s is not known to pilot", nodeID, key)
	}
	td, err := spiffeid.TrustDomainFromString(s.cfg.Generator.TrustDomain)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "trust domain: %v", err)
	}
	want, err := spiffeid.FromSegments(td, "ns", pod.Namespace, "sa", pod.ServiceAccount)
	if err != nil {
		return nil, status.Errorf(codes.PermissionDenied, "pod %s: service account %q: %v", key, pod.ServiceAccount, err)
	}
	if id != want {
		return nil, status.Errorf(codes.PermissionDenied,
			"identity %s may not receive config for pod %s, which runs as %s", id, key, want)
	}
	return pod, nil
}

// streamInterceptor authenticates every ADS stream and wraps it so each
// request's node is checked against the identity.
func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	id, err := s.cfg.Authenticator.Authenticate(ctx)
	if err != nil {
		s.logger(ctx).Info("refusing xDS stream: unauthenticated", "method", info.FullMethod, "error", err.Error())
		return status.Errorf(codes.Unauthenticated, "xds: %v", err)
	}
	as := &authStream{ServerStream: ss, s: s, id: id}
	err = handler(srv, as)
	if p := as.finish(); p != nil {
		s.disconnect(p)
	}
	if authErr := as.failure(); authErr != nil {
		s.logger(ctx).Info("refused xDS stream", "identity", id.String(), "error", authErr.Error())
		return authErr
	}
	return err
}

// authStream binds a stream to the proxy its first request names. go-control-
// plane takes the node of any later request that carries one at face value,
// so every request is checked, not just the first.
type authStream struct {
	grpc.ServerStream
	s  *Server
	id spiffeid.ID

	mu     sync.Mutex
	proxy  *proxy
	err    error
	closed bool // the handler returned; a late RecvMsg must not register
}

// finish marks the stream closed and returns the proxy it registered.
func (a *authStream) finish() *proxy {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	return a.proxy
}

func (a *authStream) failure() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *authStream) fail(err error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.err = err
	return err
}

// RecvMsg receives a request and refuses it (ending the stream with the
// returned status) if its node is not the one this identity may serve.
func (a *authStream) RecvMsg(m any) error {
	if err := a.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	node := nodeOf(m)
	a.mu.Lock()
	bound := a.proxy
	a.mu.Unlock()
	if bound != nil {
		if node != nil && node.GetId() != "" && node.GetId() != bound.nodeID {
			return a.fail(status.Errorf(codes.PermissionDenied,
				"stream is bound to node %q; request names %q", bound.nodeID, node.GetId()))
		}
		return nil
	}
	if node.GetId() == "" {
		return a.fail(status.Error(codes.InvalidArgument, "first request must carry node.id"))
	}
	ctx := a.Context()
	pod, err := a.s.authorize(ctx, a.id, node.GetId())
	if err != nil {
		return a.fail(err)
	}
	p := a.s.connect(ctx, node, pod, a.id, isDelta(m))
	a.mu.Lock()
	closed := a.closed
	if !closed {
		a.proxy = p
	}
	a.mu.Unlock()
	if closed {
		a.s.disconnect(p)
		return io.EOF
	}
	return nil
}

func nodeOf(m any) *corev3.Node {
	switch r := m.(type) {
	case *discoveryv3.DiscoveryRequest:
		return r.GetNode()
	case *discoveryv3.DeltaDiscoveryRequest:
		return r.GetNode()
	}
	return nil
}

func isDelta(m any) bool {
	_, ok := m.(*discoveryv3.DeltaDiscoveryRequest)
	return ok
}
