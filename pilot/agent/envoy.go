package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/weftmesh/weft/pilot/telemetry/envoystats"
)

// Defaults of EnvoyConfig (the agent's flags of the same names).
const (
	DefaultEnvoyBinary    = "/usr/local/bin/envoy"
	DefaultDrainDuration  = 5 * time.Second
	DefaultConcurrency    = 2
	DefaultEnvoyLogLevel  = "warning"
	DefaultStopTimeout    = 10 * time.Second
	DefaultRestartBackoff = time.Second
	DefaultMaxBackoff     = 30 * time.Second
	DefaultStableAfter    = time.Minute
)

// Process is a started Envoy. The supervisor only waits for it and signals
// it, so tests substitute a fake for the exec.Cmd behind it.
type Process interface {
	// Wait blocks until the process exits. An error with an ExitCode()
	// method (such as *exec.ExitError) carries the exit code.
	Wait() error
	// Signal delivers sig (SIGTERM, SIGKILL).
	Signal(sig os.Signal) error
	// Pid identifies the process in logs.
	Pid() int
}

// Starter starts Envoy with the given command-line arguments.
type Starter interface {
	Start(args []string) (Process, error)
}

// ExecStarter starts the Envoy binary with its output on Output (the
// agent's stderr, so `kubectl logs` shows both).
type ExecStarter struct {
	Binary string    // path of the envoy executable
	Output io.Writer // Envoy's stdout and stderr
	// Env is added to the agent's environment for Envoy (see
	// EnvoyResourceEnv).
	Env []string
}

// Start implements Starter.
func (e ExecStarter) Start(args []string) (Process, error) {
	cmd := exec.Command(e.Binary, args...)
	cmd.Stdout, cmd.Stderr = e.Output, e.Output
	if len(e.Env) > 0 {
		cmd.Env = append(os.Environ(), e.Env...)
	}
	// Should the agent die without draining (SIGKILL, panic), Envoy goes
	// with it instead of holding the ports of the next agent. The Go runtime
	// only ends the forking thread for goroutines that exit while locked to
	// it, which this program never does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start envoy %s: %w", e.Binary, err)
	}
	return execProcess{cmd}, nil
}

// execProcess is a started exec.Cmd.
type execProcess struct{ cmd *exec.Cmd }

// Wait implements Process; the error of a non-zero exit is *exec.ExitError.
func (p execProcess) Wait() error { return p.cmd.Wait() }

// Signal implements Process.
func (p execProcess) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Pid implements Process.
func (p execProcess) Pid() int { return p.cmd.Process.Pid }

// EnvoyConfig configures a Supervisor. Zero values get the defaults.
type EnvoyConfig struct {
	// Starter starts the process; ExecStarter{Binary, os.Stderr} if nil.
	Starter Starter
	// Binary is the Envoy executable for the default Starter.
	Binary string
	// BootstrapPath is the bootstrap file Envoy is started with.
	BootstrapPath string
	// AdminPort is Envoy's admin API on 127.0.0.1 (readiness, drain).
	AdminPort uint32
	// Concurrency is Envoy's worker thread count (--concurrency).
	Concurrency int
	// LogLevel is Envoy's --log-level (trace, debug, info, warning, error,
	// critical, off).
	LogLevel string
	// DrainDuration is how long Envoy drains connections on shutdown
	// before it is stopped; also its --drain-time-s.
	DrainDuration time.Duration
	// StopTimeout is how long Envoy gets to exit after SIGTERM before
	// SIGKILL.
	StopTimeout time.Duration
	// MinBackoff, MaxBackoff: restart delay after a crash, doubling per
	// consecutive crash; StableAfter is the uptime that resets it.
	MinBackoff, MaxBackoff, StableAfter time.Duration
	// Clock and Sleep are injectable for tests (Sleep reports whether d
	// elapsed before ctx ended).
	Clock func() time.Time
	Sleep func(ctx context.Context, d time.Duration) bool
	// MeterProvider defaults to the global one.
	MeterProvider metric.MeterProvider
	// Env is extra environment for the Envoy process when Starter is nil.
	Env []string
}

// EnvoyResourceEnv is the environment that names the sidecar in the spans
// Envoy's OpenTelemetry tracer sends: pilot configures the tracer with the
// environment resource detector, which reads OTEL_RESOURCE_ATTRIBUTES
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/extensions/tracers/opentelemetry/resource_detectors/v3/environment_resource_detector.proto).
// Attributes the operator already set in the pod come last and win.
func EnvoyResourceEnv(p Pod, getenv func(string) string) []string {
	attrs := "service.name=" + envoystats.WorkloadName(p.Name) + ",service.namespace=" + p.Namespace +
		",k8s.namespace.name=" + p.Namespace + ",k8s.pod.name=" + p.Name
	if p.NodeName != "" {
		attrs += ",k8s.node.name=" + p.NodeName
	}
	if extra := getenv("OTEL_RESOURCE_ATTRIBUTES"); extra != "" {
		attrs += "," + extra
	}
	return []string{"OTEL_RESOURCE_ATTRIBUTES=" + attrs}
}

func (c *EnvoyConfig) setDefaults() error {
	if c.Binary == "" {
		c.Binary = DefaultEnvoyBinary
	}
	if c.Starter == nil {
		c.Starter = ExecStarter{Binary: c.Binary, Output: os.Stderr, Env: c.Env}
	}
	if c.BootstrapPath == "" {
		c.BootstrapPath = DefaultBootstrapPath
	}
	if c.AdminPort == 0 {
		c.AdminPort = EnvoyAdminPort
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	switch c.LogLevel {
	case "":
		c.LogLevel = DefaultEnvoyLogLevel
	case "trace", "debug", "info", "warning", "warn", "error", "critical", "off":
	default:
		return fmt.Errorf("envoy log level %q is not one of trace, debug, info, warning, error, critical, off", c.LogLevel)
	}
	if c.DrainDuration < 0 {
		return fmt.Errorf("drain duration %v is negative", c.DrainDuration)
	}
	if c.DrainDuration == 0 {
		c.DrainDuration = DefaultDrainDuration
	}
	defaults := []struct {
		d   *time.Duration
		def time.Duration
	}{{&c.StopTimeout, DefaultStopTimeout}, {&c.MinBackoff, DefaultRestartBackoff}, {&c.MaxBackoff, DefaultMaxBackoff}, {&c.StableAfter, DefaultStableAfter}}
	for _, d := range defaults {
		if *d.d <= 0 {
			*d.d = d.def
		}
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	if c.MeterProvider == nil {
		c.MeterProvider = otel.GetMeterProvider()
	}
	return nil
}

// Supervisor runs Envoy: it starts it once the SVID is ready, restarts it
// after a crash with exponential backoff, and drains and stops it on
// shutdown. Its state feeds the agent's readiness.
type Supervisor struct {
	cfg      EnvoyConfig
	admin    *envoyAdmin
	restarts metric.Int64Counter

	mu       sync.Mutex
	running  bool
	draining atomic.Bool
}

// NewSupervisor validates cfg and fills defaults.
func NewSupervisor(cfg EnvoyConfig) (*Supervisor, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("envoy config: %w", err)
	}
	restarts, err := cfg.MeterProvider.Meter("github.com/weftmesh/weft/pilot/agent").Int64Counter(
		"weft_agent_envoy_restarts", metric.WithDescription("Envoy exits the agent restarted it after, by exit code."))
	if err != nil {
		return nil, fmt.Errorf("create restart counter: %w", err)
	}
	return &Supervisor{cfg: cfg, admin: newEnvoyAdmin(cfg.AdminPort), restarts: restarts}, nil
}

// Args are Envoy's command-line arguments
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/operations/cli). Hot
// restart is off: a restart is a new process, and pods (and tests) never
// share Envoy's shared memory. Draining is "immediate": every connection is
// told to close as soon as the drain starts.
//
// At the info and warning levels the "misc" component logs only errors:
// it warns once per loaded copy of a work-in-progress API, and pilot puts
// Envoy's stats access logger (WIP in 1.37) on every filter chain, which
// would be a warning per chain on every listener push. Its other
// warnings are about deprecated fields in pilot's config, which pilot's
// tests catch.
func (s *Supervisor) Args() []string {
	drainSeconds := max(1, int(math.Ceil(s.cfg.DrainDuration.Seconds())))
	args := []string{
		"-c", s.cfg.BootstrapPath,
		"--concurrency", strconv.Itoa(s.cfg.Concurrency),
		"--log-level", s.cfg.LogLevel,
	}
	switch s.cfg.LogLevel {
	case "info", "warning", "warn":
		args = append(args, "--component-log-level", "misc:error")
	}
	return append(args,
		"--drain-time-s", strconv.Itoa(drainSeconds),
		"--drain-strategy", "immediate",
		"--disable-hot-restart",
	)
}

// Running reports whether an Envoy process is up.
func (s *Supervisor) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// Draining reports whether shutdown has begun; the proxy is not ready from
// then on, so the kubelet takes the pod out of Service endpoints.
func (s *Supervisor) Draining() bool { return s.draining.Load() }

// EnvoyState is Envoy's server state from its admin API (LIVE once
// initialized, see https://www.envoyproxy.io/docs/envoy/v1.37.0/operations/admin#get--ready).
func (s *Supervisor) EnvoyState(ctx context.Context) (string, error) {
	return s.admin.ready(ctx)
}

func (s *Supervisor) setRunning(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = v
}

// Run waits for ready (the SVID is served over SDS, so Envoy's first
// connection to pilot can do mTLS), then keeps Envoy running until ctx
// ends, and drains and stops it. It returns an error only if Envoy cannot
// be started at all (missing binary).
func (s *Supervisor) Run(ctx context.Context, ready <-chan struct{}) error {
	log := logr.FromContextOrDiscard(ctx).WithName("envoy")
	select {
	case <-ctx.Done():
		s.draining.Store(true)
		return nil
	case <-ready:
	}
	attempt := 0
	for {
		started := s.cfg.Clock()
		p, err := s.cfg.Starter.Start(s.Args())
		if err != nil {
			s.draining.Store(true)
			return err
		}
		log.Info("envoy started", "pid", p.Pid(), "args", s.Args())
		s.setRunning(true)
		exited := make(chan error, 1)
		go func() { exited <- p.Wait() }()
		select {
		case <-ctx.Done():
			s.drain(ctx, log, p, exited)
			return nil
		case err := <-exited:
			s.setRunning(false)
			uptime := s.cfg.Clock().Sub(started)
			if uptime >= s.cfg.StableAfter {
				attempt = 0
			}
			wait := restartBackoff(attempt, s.cfg.MinBackoff, s.cfg.MaxBackoff)
			attempt++
			code := exitCode(err)
			s.restarts.Add(ctx, 1, metric.WithAttributeSet(exitAttrs(code)))
			log.Error(err, "envoy exited; restarting", "pid", p.Pid(), "exitCode", code,
				"uptime", uptime.Round(time.Millisecond).String(), "restartIn", wait.String(), "attempt", attempt)
			if !s.cfg.Sleep(ctx, wait) {
				s.draining.Store(true)
				return nil
			}
		}
	}
}

// drain is the shutdown sequence: not ready (the kubelet's next probe
// fails), graceful listener drain through the admin API, DrainDuration for
// connections to finish, then SIGTERM and, after StopTimeout, SIGKILL.
// Envoy exiting at any point ends the sequence early.
func (s *Supervisor) drain(ctx context.Context, log logr.Logger, p Process, exited <-chan error) {
	s.draining.Store(true)
	defer s.setRunning(false)
	log.Info("draining envoy", "pid", p.Pid(), "drainDuration", s.cfg.DrainDuration.String())
	bg := context.WithoutCancel(ctx)
	reqCtx, cancel := context.WithTimeout(bg, 2*time.Second)
	err := s.admin.drainListeners(reqCtx)
	cancel()
	if err != nil {
		log.Error(err, "drain listeners; stopping envoy without drain")
	} else {
		t := time.NewTimer(s.cfg.DrainDuration)
		select {
		case err := <-exited:
			t.Stop()
			log.Info("envoy exited while draining", "exitCode", exitCode(err))
			return
		case <-t.C:
		}
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		log.Error(err, "signal envoy", "signal", "SIGTERM")
	}
	t := time.NewTimer(s.cfg.StopTimeout)
	defer t.Stop()
	select {
	case err := <-exited:
		log.Info("envoy stopped", "exitCode", exitCode(err))
		return
	case <-t.C:
	}
	log.Info("envoy ignored SIGTERM; killing it", "stopTimeout", s.cfg.StopTimeout.String())
	if err := p.Signal(syscall.SIGKILL); err != nil {
		log.Error(err, "signal envoy", "signal", "SIGKILL")
	}
	log.Info("envoy killed", "exitCode", exitCode(<-exited))
}

// restartBackoff is min·2^n capped at max. No jitter: one Envoy per pod,
// nothing to spread.
func restartBackoff(n int, minD, maxD time.Duration) time.Duration {
	d := minD
	for i := 0; i < n && d < maxD; i++ {
		d *= 2
	}
	return min(d, maxD)
}

// exitCode is the process exit code in err (0 for nil, -1 if killed by a
// signal or unknown).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return -1
}
