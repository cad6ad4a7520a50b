package agent

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/pilot/caserver"
	"github.com/weftmesh/weft/pilot/telemetry"
)

// sidecarEnv is a whole sidecar on loopback: the test CA, a stand-in for
// pilot's xDS, and a real Envoy on ports of its own.
type sidecarEnv struct {
	cfg                                 SidecarConfig
	xds                                 *testXDS
	envoyOut                            *syncBuffer
	adminPort, statsPort, readinessPort int
	statusPort                          int
	starts                              *startLog
}

// startLog records when Envoy was started and whether the SVID was ready
// by then.
type startLog struct {
	Starter
	mu        sync.Mutex
	at        []time.Time
	procs     []Process
	svidReady func() bool
	early     bool
}

func (s *startLog) Start(args []string) (Process, error) {
	s.mu.Lock()
	s.at = append(s.at, time.Now())
	s.early = s.early || !s.svidReady()
	s.mu.Unlock()
	p, err := s.Starter.Start(args)
	if err == nil {
		s.mu.Lock()
		s.procs = append(s.procs, p)
		s.mu.Unlock()
	}
	return p, err
}

func newSidecarEnv(t *testing.T, pilotID spiffeid.ID, caOpts ...func(*caserver.Config)) *sidecarEnv {
	t.Helper()
	envoy := envoyBinary(t)
	c := startCA(t, caOpts...)
	pod := Pod{Name: "web-0", Namespace: "default", IP: "127.0.0.1", ServiceAccount: "sa-a", NodeName: "node-1"}
	e := &sidecarEnv{
		xds: startXDS(t, c, pilotID, pod.NodeID()), envoyOut: &syncBuffer{},
		adminPort: freePort(t), statsPort: freePort(t), readinessPort: freePort(t), statusPort: freePort(t),
	}
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "weft-agent"})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	e.starts = &startLog{Starter: ExecStarter{Binary: envoy, Output: e.envoyOut}}
	agentCfg := c.agentConfig(t, shortDir(t))
	agentCfg.MeterProvider = tel.MeterProvider
	e.cfg = SidecarConfig{
		Agent: agentCfg,
		Bootstrap: BootstrapConfig{
			Pod: pod, XDSAddress: e.xds.addr, XDSServerName: "weft-pilot.weft-system.svc",
			ListenAddress: "127.0.0.1", StatsPort: uint32(e.statsPort), ReadinessPort: uint32(e.readinessPort),
		},
		Envoy: EnvoyConfig{
			Starter: e.starts, BootstrapPath: filepath.Join(t.TempDir(), "envoy", "bootstrap.json"),
			AdminPort: uint32(e.adminPort), Concurrency: 1, LogLevel: "warning", DrainDuration: time.Second,
			MeterProvider: tel.MeterProvider,
		},
		StatusAddr: fmt.Sprintf("127.0.0.1:%d", e.statusPort),
		Metrics:    tel.Handler,
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("envoy output:\n%s", e.envoyOut)
		}
	})
	return e
}

// run starts the sidecar; stop cancels it (as SIGTERM does) and returns
// Run's result. started is when Run was called.
func (e *sidecarEnv) run(t *testing.T) (s *Sidecar, started time.Time, stop func() error) {
	t.Helper()
	s, err := NewSidecar(e.cfg)
	require.NoError(t, err)
	e.starts.svidReady = func() bool {
		select {
		case <-s.Agent().Ready():
			return true
		default:
			return false
		}
	}
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), testr.New(t)))
	done := make(chan error, 1)
	started = time.Now()
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = fmt.Errorf("sidecar did not stop")
			}
		})
		return runErr
	}
	t.Cleanup(func() { require.NoError(t, stop()) })
	return s, started, stop
}

func loopURL(port int, path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", port, path) }

// TestSidecarRunsEnvoy is the sidecar end to end with a real Envoy: Envoy
// starts only after the SVID is served, connects to "pilot" with mTLS
// (presenting the pod's SVID, verifying pilot's SPIFFE ID), goes LIVE once
// configured; the readiness and stats listeners answer; shutdown drains
// (readiness says so) and then stops Envoy.
func TestSidecarRunsEnvoy(t *testing.T) {
	pilotID, err := PilotID(td)
	require.NoError(t, err)
	e := newSidecarEnv(t, pilotID)
	s, started, stop := e.run(t)

	ready := loopURL(e.readinessPort, ReadinessPath)
	var live time.Duration
	require.Eventually(t, func() bool {
		code, _, _, err := httpGet(ready)
		live = time.Since(started)
		return err == nil && code == http.StatusOK
	}, 30*time.Second, 5*time.Millisecond, "the readiness listener never said ready")
	e.starts.mu.Lock()
	t.Logf("agent start -> SVID served, Envoy started: %v; -> Envoy LIVE and ready on :15021: %v",
		e.starts.at[0].Sub(started).Round(time.Millisecond), live.Round(time.Millisecond))
	assert.Len(t, e.starts.at, 1, "one Envoy, never restarted")
	assert.False(t, e.starts.early, "Envoy started before the SVID was served")
	e.starts.mu.Unlock()
	assert.Contains(t, e.xds.peerIDs(), wantID, "Envoy presented the pod's SVID to pilot")
	assert.True(t, s.Supervisor().Running())

	code, body, _, err := httpGet(loopURL(e.statsPort, StatsPath))
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	// Every stat carries the reporting workload (envoystats.StatsConfig).
	for _, metric := range []string{`envoy_server_live{workload="web",workload_namespace="default"} 1`,
		`envoy_cluster_upstream_cx_active{workload="web",workload_namespace="default",envoy_cluster_name="xds-grpc"} 1`} {
		assert.True(t, strings.Contains(body, metric+"\n"), "stats lack %q", metric)
	}
	code, _, _, err = httpGet(loopURL(e.statsPort, "/config_dump"))
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, code, "only stats are exposed, not the admin API")

	// The bootstrap was written where Envoy was told to read it.
	data, err := os.ReadFile(e.cfg.Envoy.BootstrapPath)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"id": "web-0.default"`)

	// A crashed Envoy is restarted (after the 1s backoff) and the pod is
	// ready again without the agent restarting.
	e.starts.mu.Lock()
	require.NoError(t, e.starts.procs[0].Signal(syscall.SIGKILL))
	e.starts.mu.Unlock()
	require.Eventually(t, func() bool { return !s.Supervisor().Running() }, 5*time.Second, time.Millisecond)
	code, _, _, err = httpGet(ready)
	assert.True(t, err != nil || code != http.StatusOK, "ready while Envoy is down")
	require.Eventually(t, func() bool {
		code, _, _, err := httpGet(ready)
		return err == nil && code == http.StatusOK
	}, 30*time.Second, 5*time.Millisecond, "not ready again after Envoy's restart")
	e.starts.mu.Lock()
	require.Len(t, e.starts.at, 2)
	assert.GreaterOrEqual(t, e.starts.at[1].Sub(e.starts.at[0]), time.Second, "restart waited for the backoff")
	e.starts.mu.Unlock()

	code, body, _, err = httpGet(loopURL(e.statusPort, "/metrics"))
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	for _, metric := range []string{`weft_agent_envoy_restarts_total{exit_code="-1"} 1`, `weft_agent_svid_fetches_total{result="ok"} 1`} {
		assert.True(t, strings.Contains(body, metric+"\n"), "agent metrics lack %q", metric)
	}

	const drainClose = "http.readiness.downstream_cx_drain_close"
	n, err := envoyStat(e.adminPort, drainClose)
	require.NoError(t, err)
	require.Zero(t, n, "no drain before shutdown")

	stopped := make(chan error, 1)
	shutdownStart := time.Now()
	go func() { stopped <- stop() }()
	require.Eventually(t, func() bool {
		code, body, _, err := httpGet(ready)
		return err == nil && code == http.StatusServiceUnavailable && body == "not ready: draining\n"
	}, 5*time.Second, 5*time.Millisecond, "readiness never reported the drain")
	// The agent reports draining before its drain call to Envoy's admin API
	// returns, so the first 503s may precede Envoy's drain: keep asking
	// until a readiness connection is closed for the drain.
	assert.Eventually(t, func() bool {
		httpGet(ready) // a request on the readiness listener while it drains
		n, err := envoyStat(e.adminPort, drainClose)
		return err == nil && n > 0
	}, 900*time.Millisecond, 10*time.Millisecond, "Envoy is draining its listeners (connections closed for the drain)")
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("sidecar did not stop")
	}
	took := time.Since(shutdownStart)
	assert.GreaterOrEqual(t, took, e.cfg.Envoy.DrainDuration, "Envoy was stopped before the drain duration")
	t.Logf("shutdown (drain %v, then SIGTERM) took %v", e.cfg.Envoy.DrainDuration, took.Round(time.Millisecond))
	assert.False(t, s.Supervisor().Running())
	_, _, _, err = httpGet(loopURL(e.adminPort, "/ready"))
	assert.Error(t, err, "Envoy's admin API is gone: the process exited")
}

// TestSidecarRefusesImpostorPilot: an xDS server whose certificate chains
// to the mesh root but names another identity is refused by Envoy (SAN
// check), so the proxy never goes LIVE.
func TestSidecarRefusesImpostorPilot(t *testing.T) {
	impostor := spiffeid.RequireFromPath(td, "/ns/weft-system/sa/impostor")
	e := newSidecarEnv(t, impostor)
	e.run(t)
	require.Eventually(t, func() bool {
		n, err := envoyStat(e.adminPort, "cluster.xds-grpc.ssl.fail_verify_san")
		return err == nil && n > 0
	}, 30*time.Second, 20*time.Millisecond, "Envoy never rejected the impostor's SAN")
	code, body, _, err := httpGet(loopURL(e.adminPort, "/ready"))
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, []string{"PRE_INITIALIZING", "INITIALIZING"}, strings.TrimSpace(body), "no config without a trusted pilot")
	// Envoy opens its listeners, the static ones included, only once
	// initialized: the kubelet's probe is refused until pilot configures it.
	for _, u := range []string{loopURL(e.readinessPort, ReadinessPath), loopURL(e.statsPort, StatsPath)} {
		_, _, _, err := httpGet(u)
		assert.ErrorContains(t, err, "connection refused", u)
	}
}
