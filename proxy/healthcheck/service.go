package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
)

// ServiceHealth is what one health-check node port reports.
type ServiceHealth struct {
	Name types.NamespacedName
	// LocalEndpoints counts this node's ready endpoints of the Service.
	LocalEndpoints int
}

// Services runs one HTTP listener per health-check node port. Load balancers
// of externalTrafficPolicy: Local Services probe it to learn which nodes
// have endpoints, so only those nodes receive (source-preserving) traffic.
type Services struct {
	node   *Node
	listen func(port uint16) (net.Listener, error)
	log    logr.Logger

	mu      sync.Mutex
	servers map[uint16]*serviceServer
}

type serviceServer struct {
	mu     sync.Mutex
	health ServiceHealth
	srv    *http.Server
	addr   string // where it listens
}

// ServicesConfig configures Services.
type ServicesConfig struct {
	// Node gates every answer: a node whose rules are stale is unhealthy.
	Node *Node
	// Listen opens a port; by default TCP on all addresses.
	Listen func(port uint16) (net.Listener, error)
	Log    logr.Logger
}

// NewServices returns a Services server with no ports open.
func NewServices(cfg ServicesConfig) *Services {
	if cfg.Listen == nil {
		cfg.Listen = func(port uint16) (net.Listener, error) {
			return net.Listen("tcp", ":"+strconv.Itoa(int(port)))
		}
	}
	return &Services{node: cfg.Node, listen: cfg.Listen, log: cfg.Log, servers: map[uint16]*serviceServer{}}
}

// Sync opens, updates and closes listeners to match want. A port that cannot
// be opened (say, taken by another process) is reported and retried on the
// next Sync; the other ports are unaffected.
func (s *Services) Sync(want map[uint16]ServiceHealth) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for port, srv := range s.servers {
		if _, ok := want[port]; !ok {
			s.closeLocked(port, srv)
		}
	}
	var errs []error
	for port, h := range want {
		if srv, ok := s.servers[port]; ok {
			srv.mu.Lock()
			srv.health = h
			srv.mu.Unlock()
			continue
		}
		ln, err := s.listen(port)
		if err != nil {
			errs = append(errs, fmt.Errorf("open health check port %d for %s: %w", port, h.Name, err))
			continue
		}
		srv := &serviceServer{health: h, addr: ln.Addr().String()}
		srv.srv = &http.Server{Handler: s.handler(srv), ReadHeaderTimeout: 5 * time.Second}
		s.servers[port] = srv
		go func() {
			if err := srv.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error(err, "health check server stopped", "port", port, "service", h.Name.String())
			}
		}()
	}
	return errors.Join(errs...)
}

func (s *Services) closeLocked(port uint16, srv *serviceServer) {
	if err := srv.srv.Close(); err != nil {
		s.log.Error(err, "close health check server", "port", port)
	}
	delete(s.servers, port)
}

// Close stops every listener.
func (s *Services) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for port, srv := range s.servers {
		s.closeLocked(port, srv)
	}
}

type serviceStatus struct {
	Service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
	LocalEndpoints      int  `json:"localEndpoints"`
	ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
}

func (s *Services) handler(srv *serviceServer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		srv.mu.Lock()
		h := srv.health
		srv.mu.Unlock()
		var st serviceStatus
		st.Service.Namespace, st.Service.Name = h.Name.Namespace, h.Name.Name
		st.LocalEndpoints = h.LocalEndpoints
		st.ServiceProxyHealthy = s.node.Healthy()
		w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(h.LocalEndpoints))
		writeJSON(w, h.LocalEndpoints > 0 && st.ServiceProxyHealthy, st)
	})
}

// Shutdown closes every listener when ctx ends; run it in a goroutine.
func (s *Services) Shutdown(ctx context.Context) {
	<-ctx.Done()
	s.Close()
}
