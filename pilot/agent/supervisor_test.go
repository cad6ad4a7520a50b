package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// events is an ordered log shared by the fakes.
type events struct {
	mu  sync.Mutex
	log []string
	at  map[string]time.Time
}

func (e *events) add(ev string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, ev)
	if e.at == nil {
		e.at = map[string]time.Time{}
	}
	e.at[ev] = time.Now()
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

type exitErr int

func (e exitErr) Error() string { return "exit status " + strconv.Itoa(int(e)) }
func (e exitErr) ExitCode() int { return int(e) }

// fakeProc is an Envoy process: it exits when exit is fed, or on a signal
// it honours.
type fakeProc struct {
	pid         int
	exit        chan error
	ignoreTERM  bool
	ev          *events
	beforeCrash func()
}

func (p *fakeProc) Wait() error {
	err := <-p.exit
	if p.beforeCrash != nil && err != nil {
		p.beforeCrash()
	}
	return err
}

func (p *fakeProc) Pid() int { return p.pid }

func (p *fakeProc) Signal(sig os.Signal) error {
	p.ev.add(sig.String())
	switch {
	case sig == syscall.SIGKILL:
		p.exit <- exitErr(-1)
	case sig == syscall.SIGTERM && !p.ignoreTERM:
		p.exit <- nil
	}
	return nil
}

// fakeStarter hands out processes made by next and records the args.
type fakeStarter struct {
	mu      sync.Mutex
	n       int
	args    [][]string
	next    func(n int) *fakeProc
	started chan *fakeProc
}

func (f *fakeStarter) Start(args []string) (Process, error) {
	f.mu.Lock()
	f.n++
	n := f.n
	f.args = append(f.args, args)
	f.mu.Unlock()
	p := f.next(n)
	p.pid = 1000 + n
	if f.started != nil {
		f.started <- p
	}
	return p, nil
}

// fakeAdmin is Envoy's admin API: /ready answers state, drains are logged.
type fakeAdmin struct {
	mu    sync.Mutex
	state string
	ev    *events
	sup   *Supervisor
	port  uint32
}

func startFakeAdmin(t *testing.T, ev *events) *fakeAdmin {
	t.Helper()
	a := &fakeAdmin{state: "LIVE", ev: ev}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/ready":
			a.mu.Lock()
			state := a.state
			a.mu.Unlock()
			if state != "LIVE" {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			fmt.Fprintln(w, state)
		case r.URL.Path == "/drain_listeners" && r.Method == http.MethodPost && r.URL.Query().Has("graceful"):
			ev.add(fmt.Sprintf("drain(notReady=%v)", a.sup.Draining()))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	a.port = uint32(p)
	return a
}

func (a *fakeAdmin) set(state string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state = state
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func TestSupervisorRestartsWithBackoff(t *testing.T) {
	ev := &events{}
	var (
		mu  sync.Mutex
		now = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	// Envoy crashes at once, seven times; the eighth run lasts over a
	// minute before it crashes; the ninth keeps running.
	starter := &fakeStarter{started: make(chan *fakeProc, 16), next: func(n int) *fakeProc {
		p := &fakeProc{exit: make(chan error, 2), ev: ev}
		switch {
		case n <= 7:
			p.exit <- exitErr(n)
		case n == 8:
			p.beforeCrash = func() { advance(61 * time.Second) }
			p.exit <- exitErr(139)
		}
		return p
	}}
	var sleeps []time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sup, err := NewSupervisor(EnvoyConfig{
		Starter: starter, BootstrapPath: "/b.json", AdminPort: 1, Clock: clock,
		Sleep: func(_ context.Context, d time.Duration) bool { sleeps = append(sleeps, d); return true },
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx, closedChan()) }()
	for range 9 {
		<-starter.started
	}
	cancel()
	require.NoError(t, <-done)

	s := time.Second
	assert.Equal(t, []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s, s}, sleeps,
		"doubling from 1s, capped at 30s, back to 1s after a stable minute")
	assert.Equal(t, []string{"-c", "/b.json", "--concurrency", "2", "--log-level", "warning", "--component-log-level", "misc:error",
		"--drain-time-s", "5", "--drain-strategy", "immediate", "--disable-hot-restart"}, starter.args[0])
}

func TestSupervisorWaitsForSVID(t *testing.T) {
	starter := &fakeStarter{started: make(chan *fakeProc, 1), next: func(int) *fakeProc {
		return &fakeProc{exit: make(chan error, 2), ev: &events{}}
	}}
	admin := startFakeAdmin(t, &events{})
	sup, err := NewSupervisor(EnvoyConfig{Starter: starter, AdminPort: admin.port, DrainDuration: time.Millisecond})
	require.NoError(t, err)
	admin.sup = sup
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx, ready) }()
	select {
	case <-starter.started:
		t.Fatal("envoy started before the SVID was ready")
	case <-time.After(100 * time.Millisecond):
	}
	close(ready)
	<-starter.started
	cancel()
	require.NoError(t, <-done)
}

// TestSupervisorDrainSequence: on shutdown the proxy turns not-ready
// before Envoy is asked to drain, SIGTERM follows after the drain
// duration, and SIGKILL only if Envoy ignores SIGTERM.
func TestSupervisorDrainSequence(t *testing.T) {
	for name, tc := range map[string]struct {
		ignoreTERM bool
		want       []string
	}{
		"envoy exits on SIGTERM": {false, []string{"drain(notReady=true)", "terminated"}},
		"envoy ignores SIGTERM":  {true, []string{"drain(notReady=true)", "terminated", "killed"}},
	} {
		t.Run(name, func(t *testing.T) {
			ev := &events{}
			admin := startFakeAdmin(t, ev)
			starter := &fakeStarter{started: make(chan *fakeProc, 1), next: func(int) *fakeProc {
				return &fakeProc{exit: make(chan error, 2), ev: ev, ignoreTERM: tc.ignoreTERM}
			}}
			const drain = 300 * time.Millisecond
			sup, err := NewSupervisor(EnvoyConfig{
				Starter: starter, AdminPort: admin.port, DrainDuration: drain, StopTimeout: 200 * time.Millisecond,
			})
			require.NoError(t, err)
			admin.sup = sup
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- sup.Run(ctx, closedChan()) }()
			<-starter.started
			require.True(t, sup.Running())
			cancel()
			require.NoError(t, <-done)

			assert.Equal(t, tc.want, ev.list())
			assert.GreaterOrEqual(t, ev.at["terminated"].Sub(ev.at["drain(notReady=true)"]), drain,
				"SIGTERM only after the drain duration")
			assert.False(t, sup.Running())
			assert.True(t, sup.Draining())
		})
	}
}

// TestSupervisorStopsWithoutAdmin: an Envoy whose admin API does not
// answer is stopped at once rather than after a drain that cannot happen.
func TestSupervisorStopsWithoutAdmin(t *testing.T) {
	ev := &events{}
	starter := &fakeStarter{started: make(chan *fakeProc, 1), next: func(int) *fakeProc {
		return &fakeProc{exit: make(chan error, 2), ev: ev}
	}}
	sup, err := NewSupervisor(EnvoyConfig{Starter: starter, AdminPort: uint32(closedPort(t)), DrainDuration: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx, closedChan()) }()
	<-starter.started
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("supervisor waited for a drain that was never started")
	}
	assert.Equal(t, []string{"terminated"}, ev.list())
}

func TestSupervisorMissingBinary(t *testing.T) {
	sup, err := NewSupervisor(EnvoyConfig{Binary: "/nonexistent/envoy"})
	require.NoError(t, err)
	err = sup.Run(context.Background(), closedChan())
	assert.ErrorContains(t, err, "start envoy /nonexistent/envoy")
}

func TestEnvoyConfigRejectsBadLogLevel(t *testing.T) {
	_, err := NewSupervisor(EnvoyConfig{LogLevel: "loud"})
	assert.Error(t, err)
}

// TestReadinessFlips follows /healthz/ready through a pod's life: no SVID,
// Envoy not started, Envoy initializing, LIVE, crashed, draining.
func TestReadinessFlips(t *testing.T) {
	ev := &events{}
	admin := startFakeAdmin(t, ev)
	admin.set("INITIALIZING")
	procs := make(chan *fakeProc, 4)
	starter := &fakeStarter{started: procs, next: func(int) *fakeProc {
		return &fakeProc{exit: make(chan error, 2), ev: ev}
	}}
	sup, err := NewSupervisor(EnvoyConfig{
		Starter: starter, AdminPort: admin.port, DrainDuration: 200 * time.Millisecond,
		Sleep: func(ctx context.Context, _ time.Duration) bool { return sleep(ctx, 50*time.Millisecond) },
	})
	require.NoError(t, err)
	admin.sup = sup
	svid := make(chan struct{})
	h := newStatusHandler(svid, sup, nil, nil)
	probe := func() (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, ReadinessPath, nil))
		return rec.Code, rec.Body.String()
	}
	expect := func(code int, body string) {
		t.Helper()
		require.Eventually(t, func() bool {
			c, b := probe()
			return c == code && b == body
		}, 5*time.Second, 5*time.Millisecond, "want %d %q", code, body)
	}

	expect(503, "not ready: no SVID yet\n")
	close(svid)
	expect(503, "not ready: envoy is not running\n")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx, svid) }()
	p := <-procs
	expect(503, "not ready: envoy is INITIALIZING\n")
	admin.set("LIVE")
	expect(200, "ready\n")

	p.exit <- exitErr(1) // crash; restarted after the (shortened) backoff
	expect(503, "not ready: envoy is not running\n")
	<-procs
	expect(200, "ready\n")

	cancel()
	expect(503, "not ready: draining\n")
	require.NoError(t, <-done)
	expect(503, "not ready: draining\n")
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}
