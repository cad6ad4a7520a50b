package xds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/go-logr/logr"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
)

// Server is pilot's ADS server. Build it with New and start it with Run.
type Server struct {
	cfg     Config
	caches  *typeCaches
	status  *tracker
	tel     *telemetry
	trigger chan struct{}
	log     logr.Logger // set by Run; discards before

	mu      sync.Mutex
	proxies map[string]*proxy
	outMu   sync.Mutex
	outGen  uint64
	outbox  map[string]*namespacePart // by namespace
	scopes  map[string]*namespacePart // by visible-Service set
	fragMu  sync.Mutex
	frags   *fragments

	// testHookInbound, if set by a test, edits every proxy's generated
	// inbound resources (to push config Envoy rejects); testHookOutbound
	// edits the shared outbound resources as they are built.
	testHookInbound  atomic.Pointer[func(*generator.Resources)]
	testHookOutbound atomic.Pointer[func(*generator.Resources)]
}

// proxy is one connected Envoy (possibly over several streams while it
// reconnects).
type proxy struct {
	nodeID    string
	pod       model.Key
	identity  spiffeid.ID
	delta     bool
	connected time.Time
	streams   int // guarded by Server.mu

	// mu serialises pushes to this proxy; last is the snapshot last set
	// (to skip identical ones) and lastGen the model generation it came
	// from (so an older view never overwrites a newer one).
	mu      sync.Mutex
	last    *builtSnapshot
	lastGen uint64
	own     *part // inbound part, reused while ownDeps are unchanged
	ownDeps []any
}

// New validates cfg and builds a Server; nothing runs until Run.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		status:  newTracker(),
		trigger: make(chan struct{}, 1),
		log:     logr.Discard(),
		proxies: map[string]*proxy{},
		outbox:  map[string]*namespacePart{},
	}
	s.caches = newTypeCaches(cacheLogger{s})
	tel, err := newTelemetry(s)
	if err != nil {
		return nil, err
	}
	s.tel, s.status.onSent, s.status.onAnswer = tel, tel.sent, tel.answered
	return s, nil
}

// Run serves ADS until ctx is done, then stops gracefully (bounded to a few
// seconds so a stuck stream cannot hold pilot's shutdown).
func (s *Server) Run(ctx context.Context) error {
	s.log = logr.FromContextOrDiscard(ctx).WithName("xds")
	lis := s.cfg.Listener
	if lis == nil {
		var err error
		if lis, err = net.Listen("tcp", s.cfg.Addr); err != nil {
			return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
		}
	}
	opts := []grpc.ServerOption{
		grpc.StreamInterceptor(s.streamInterceptor),
		grpc.MaxConcurrentStreams(1 << 16),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 15 * time.Second, PermitWithoutStream: true}),
	}
	if s.cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.cfg.TLS)))
	}
	gs := grpc.NewServer(opts...)
	xdsServer := serverv3.NewServer(ctx, s.caches.mux, s.status.callbacks(s))
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, xdsServer)

	s.tel.start(ctx)
	s.cfg.Model.Subscribe(func(model.Event) { s.Trigger() })
	pushDone := make(chan struct{})
	go func() {
		defer close(pushDone)
		s.pushLoop(ctx)
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- gs.Serve(lis) }()
	s.log.Info("serving xDS", "addr", lis.Addr().String(), "tls", s.cfg.TLS != nil)

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("serve xds: %w", err)
	}
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		gs.Stop()
	}
	<-pushDone
	if errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	return err
}

// Trigger schedules a debounced push of every proxy; model changes call it.
func (s *Server) Trigger() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

func (s *Server) logger(ctx context.Context) logr.Logger {
	if l, err := logr.FromContext(ctx); err == nil {
		return l.WithName("xds")
	}
	return s.log
}

// connect registers an authorised proxy and sets its first snapshot before
// go-control-plane opens the stream's first watch, so it is answered at
// once.
func (s *Server) connect(ctx context.Context, node *corev3.Node, pod *model.Pod, id spiffeid.ID, delta bool) *proxy {
	s.mu.Lock()
	p, ok := s.proxies[node.GetId()]
	if !ok {
		p = &proxy{nodeID: node.GetId(), pod: pod.Key(), identity: id, delta: delta, connected: time.Now()}
		s.proxies[p.nodeID] = p
		s.status.addNode(p.nodeID, pod.Key(), id.String(), delta)
	}
	p.streams++
	s.mu.Unlock()
	s.logger(ctx).Info("proxy connected", "node", p.nodeID, "identity", id.String(), "delta", delta)
	if err := s.pushOne(s.cfg.Model.View(), p); err != nil {
		s.logger(ctx).Error(err, "initial snapshot", "node", p.nodeID)
	}
	return p
}

// disconnect forgets a proxy when its last stream ends, so its snapshot
// and status do not outlive it.
func (s *Server) disconnect(p *proxy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.streams--
	if p.streams > 0 || s.proxies[p.nodeID] != p {
		return
	}
	delete(s.proxies, p.nodeID)
	s.caches.clear(p.nodeID)
	s.status.removeNode(p.nodeID)
	s.tel.gone(p.nodeID)
	s.log.Info("proxy disconnected", "node", p.nodeID)
}

func (s *Server) connectedProxies() []*proxy {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*proxy, 0, len(s.proxies))
	for _, p := range s.proxies {
		out = append(out, p)
	}
	return out
}

// cacheLogger sends go-control-plane's logs to the server's logr logger.
type cacheLogger struct{ s *Server }

func (l cacheLogger) Debugf(format string, args ...any) {
	if lg := l.s.log.V(2); lg.Enabled() {
		lg.Info(fmt.Sprintf(format, args...))
	}
}

func (l cacheLogger) Infof(format string, args ...any) {
	if lg := l.s.log.V(1); lg.Enabled() {
		lg.Info(fmt.Sprintf(format, args...))
	}
}
func (l cacheLogger) Warnf(format string, args ...any) { l.s.log.Info(fmt.Sprintf(format, args...)) }
func (l cacheLogger) Errorf(format string, args ...any) {
	l.s.log.Error(errors.New(fmt.Sprintf(format, args...)), "go-control-plane")
}
