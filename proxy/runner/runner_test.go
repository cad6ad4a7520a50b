package runner

import (
	"context"
	"errors"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// harness drives a Runner with a fake clock. Each sync reports the fake time
// it ran at and returns the next queued result.
type harness struct {
	t       *testing.T
	clock   *clocktesting.FakeClock
	r       *Runner
	start   time.Time
	calls   chan time.Duration
	results chan error
}

func newHarness(t *testing.T, cfg Config) *harness {
	h := &harness{t: t, start: time.Unix(1000, 0), calls: make(chan time.Duration, 10), results: make(chan error, 10)}
	h.clock = clocktesting.NewFakeClock(h.start)
	cfg.Clock = h.clock
	cfg.Sync = func(context.Context) error {
		h.calls <- h.clock.Since(h.start)
		select {
		case err := <-h.results:
			return err
		default:
			return nil
		}
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Loop(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// next advances fake time in small steps until a sync runs and returns the
// fake time (since start) it ran at.
func (h *harness) next() time.Duration {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case at := <-h.calls:
			return at
		case <-deadline:
			h.t.Fatal("no sync within 5s of real time")
		case <-time.After(2 * time.Millisecond):
			h.clock.Step(step)
		}
	}
}

// step is how far fake time moves per 2ms of real time while waiting: small
// enough that a loaded machine's scheduling delay stays well inside the
// tolerances below.
const step = 10 * time.Millisecond

// quiet checks no sync runs while fake time advances by d.
func (h *harness) quiet(d time.Duration) {
	h.t.Helper()
	for range int(d / (10 * step)) {
		select {
		case at := <-h.calls:
			h.t.Fatalf("unexpected sync at %v", at)
		case <-time.After(2 * time.Millisecond):
			h.clock.Step(10 * step)
		}
	}
}

func TestBurstThenMinInterval(t *testing.T) {
	h := newHarness(t, Config{MinInterval: time.Second, Burst: 2, MaxInterval: time.Hour})
	h.r.Run()
	first := h.next()
	h.r.Run()
	if second := h.next(); second-first > 500*time.Millisecond {
		t.Errorf("second run of a burst of 2 waited %v", second-first)
	}
	h.r.Run()
	h.r.Run() // coalesces with the previous request
	third := h.next()
	if third-first < 900*time.Millisecond {
		t.Errorf("third run came %v after the first, want about the 1s min interval", third-first)
	}
	h.quiet(3 * time.Second)
}

func TestPeriodicRunWithoutTriggers(t *testing.T) {
	h := newHarness(t, Config{MinInterval: time.Second, MaxInterval: 10 * time.Second})
	if at := h.next(); at < 10*time.Second {
		t.Errorf("periodic run at %v, want after the 10s max interval", at)
	}
}

func TestRetryWithBackoff(t *testing.T) {
	h := newHarness(t, Config{MinInterval: 100 * time.Millisecond, MaxInterval: time.Minute, RetryMin: time.Second, RetryMax: 4 * time.Second})
	boom := errors.New("iptables-restore failed")
	for range 4 {
		h.results <- boom
	}
	h.r.Run()
	prev := h.next()
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		at := h.next()
		if gap := at - prev; gap < want || gap > want+500*time.Millisecond {
			t.Errorf("retry %d came after %v, want %v", i+1, gap, want)
		}
		prev = at
	}
	// The last retry succeeded: back to the periodic interval.
	h.quiet(30 * time.Second)
}

func TestNewRejectsBadIntervals(t *testing.T) {
	if _, err := New(Config{Sync: func(context.Context) error { return nil }, MinInterval: time.Minute, MaxInterval: time.Second}); err == nil {
		t.Error("max interval below min interval accepted")
	}
}
