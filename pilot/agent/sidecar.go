package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/weftmesh/weft/api/annotation"
	"golang.org/x/sync/errgroup"
)

// DefaultStatusAddr is the agent's HTTP listener. It is on every address,
// not loopback: the kubelet sends the rewritten app probes to the pod IP.
const DefaultStatusAddr = ":15020"

// Environment variables the injector sets on the sidecar (downward API).
const (
	EnvPodName        = "POD_NAME"
	EnvPodNamespace   = "POD_NAMESPACE"
	EnvPodIP          = "POD_IP"
	EnvNodeName       = "NODE_NAME"
	EnvServiceAccount = "SERVICE_ACCOUNT"
)

// PodFromEnv reads the pod's identity from the injector's environment.
func PodFromEnv(getenv func(string) string) Pod {
	return Pod{
		Name: getenv(EnvPodName), Namespace: getenv(EnvPodNamespace), IP: getenv(EnvPodIP),
		NodeName: getenv(EnvNodeName), ServiceAccount: getenv(EnvServiceAccount),
	}
}

// AppProbersFromEnv decodes annotation.AppProbersEnv; unset means the pod
// has no rewritten probes.
func AppProbersFromEnv(getenv func(string) string) (annotation.AppProbers, error) {
	v := getenv(annotation.AppProbersEnv)
	if v == "" {
		return nil, nil
	}
	return annotation.ParseAppProbers(v)
}

// SidecarConfig is the whole sidecar: identity (Agent), Envoy's bootstrap
// and process, and the status server. Fields shared between the parts
// (SDS socket, trust domain, admin and agent ports) are taken from Agent,
// Envoy and StatusAddr and need not be repeated in Bootstrap.
type SidecarConfig struct {
	Agent     Config          // SVID, SDS and Workload API
	Bootstrap BootstrapConfig // pod, pilot's xDS address, Envoy's listener ports
	Envoy     EnvoyConfig     // the Envoy process
	// StatusAddr is the listen address of the status server
	// (DefaultStatusAddr); port 0 picks a free port, which the bootstrap's
	// agent cluster then points at.
	StatusAddr string
	// AppProbers are the app's original probes, served under
	// AppHealthPrefix.
	AppProbers annotation.AppProbers
	// Metrics serves /metrics (the agent's OpenTelemetry exporter).
	Metrics http.Handler
	// Started is when the process started, the start of the SpanStart
	// trace (zero: when Run is called).
	Started time.Time
}

// Sidecar is weft-agent as a whole: Agent (SVID, SDS, Workload API),
// Supervisor (Envoy) and the status server.
type Sidecar struct {
	cfg   SidecarConfig
	agent *Agent
	envoy *Supervisor
	start *startTrace
}

// NewSidecar validates cfg and builds the parts.
func NewSidecar(cfg SidecarConfig) (*Sidecar, error) {
	a, err := New(cfg.Agent)
	if err != nil {
		return nil, err
	}
	sup, err := NewSupervisor(cfg.Envoy)
	if err != nil {
		return nil, err
	}
	if cfg.StatusAddr == "" {
		cfg.StatusAddr = DefaultStatusAddr
	}
	start := newStartTrace(a.cfg.TracerProvider, cfg.Started, sup.EnvoyState)
	sup.cfg.Starter = start.starter(sup.cfg.Starter)
	cfg.Agent, cfg.Envoy = a.cfg, sup.cfg
	cfg.Bootstrap.SDSSocket = a.cfg.SDSSocket
	cfg.Bootstrap.TrustDomain = a.cfg.TrustDomain
	cfg.Bootstrap.AdminPort = sup.cfg.AdminPort
	return &Sidecar{cfg: cfg, agent: a, envoy: sup, start: start}, nil
}

// Agent is the identity part, for tests and callers that watch the SVID.
func (s *Sidecar) Agent() *Agent { return s.agent }

// Supervisor is the Envoy part.
func (s *Sidecar) Supervisor() *Supervisor { return s.envoy }

// Run writes the bootstrap, then runs the agent, the status server and
// Envoy until ctx ends (SIGTERM) or a part fails. Shutdown drains Envoy
// first; the SDS and status servers stay up until Envoy has exited, so
// Envoy keeps its secrets and the readiness listener answers "draining"
// meanwhile. The start-up is traced (SpanStart) until the first readiness
// answer 200.
func (s *Sidecar) Run(ctx context.Context) (err error) {
	ctx = s.start.begin(ctx)
	defer func() { s.start.finish(err) }()
	log := logr.FromContextOrDiscard(ctx)
	lis, err := net.Listen("tcp", s.cfg.StatusAddr)
	if err != nil {
		return fmt.Errorf("listen status %s: %w", s.cfg.StatusAddr, err)
	}
	if err := s.writeBootstrap(lis.Addr().(*net.TCPAddr).Port); err != nil {
		return errors.Join(err, lis.Close())
	}
	log.Info("wrote envoy bootstrap", "path", s.cfg.Envoy.BootstrapPath, "node", s.cfg.Bootstrap.Pod.NodeID())

	// svcCtx ends the servers once Envoy is down; envoyCtx ends Envoy on
	// shutdown or when a server fails.
	svcCtx, stopServices := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServices()
	g, gctx := errgroup.WithContext(svcCtx)
	envoyCtx, stopEnvoy := context.WithCancel(gctx)
	defer context.AfterFunc(ctx, stopEnvoy)()
	defer stopEnvoy()

	handler := s.start.statusHandler(newStatusHandler(s.agent.Ready(), s.envoy, s.cfg.AppProbers, s.cfg.Metrics))
	g.Go(func() error { return s.agent.Run(gctx) })
	g.Go(func() error { return serveStatus(gctx, lis, handler) })
	g.Go(func() error {
		defer stopServices()
		return s.envoy.Run(envoyCtx, s.agent.Ready())
	})
	return g.Wait()
}

func (s *Sidecar) writeBootstrap(agentPort int) error {
	cfg := s.cfg.Bootstrap
	cfg.AgentPort = uint32(agentPort)
	b, err := Bootstrap(cfg)
	if err != nil {
		return err
	}
	data, err := MarshalBootstrap(b)
	if err != nil {
		return err
	}
	return WriteBootstrap(s.cfg.Envoy.BootstrapPath, data)
}
