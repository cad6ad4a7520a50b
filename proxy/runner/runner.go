// Package runner is weft-proxy's bounded-frequency runner: event handlers
// call Run as often as they like, and the sync function runs at most Burst
// times back to back and then at most once per MinInterval, at least once
// per MaxInterval (the periodic resync), and again after a failure with
// exponential backoff. It is kube-proxy's BoundedFrequencyRunner idea
// (pkg/proxy/runner) with a token bucket for bursts and backoff on error,
// and an injected clock so tests run without sleeping.
package runner

import (
	"context"
	"fmt"
	"math"
	"time"

	"k8s.io/utils/clock"
)

// Config configures a Runner.
type Config struct {
	// Sync is the work; an error schedules a retry.
	Sync func(context.Context) error
	// MinInterval is the sustained minimum time between runs.
	MinInterval time.Duration
	// Burst is how many runs may happen back to back before MinInterval
	// applies (at least 1).
	Burst int
	// MaxInterval is the longest time between runs without any trigger.
	MaxInterval time.Duration
	// RetryMin and RetryMax bound the backoff after failures; they default
	// to MinInterval and MaxInterval.
	RetryMin, RetryMax time.Duration
	// Clock is clock.RealClock{} when nil.
	Clock clock.Clock
}

// Runner runs Config.Sync; see the package doc.
type Runner struct {
	cfg     Config
	trigger chan struct{}
}

// New checks cfg and returns a Runner; call Loop to start it.
func New(cfg Config) (*Runner, error) {
	if cfg.Sync == nil {
		return nil, fmt.Errorf("runner: no sync function")
	}
	if cfg.MinInterval <= 0 || cfg.MaxInterval < cfg.MinInterval {
		return nil, fmt.Errorf("runner: need 0 < min interval (%v) <= max interval (%v)", cfg.MinInterval, cfg.MaxInterval)
	}
	cfg.Burst = max(cfg.Burst, 1)
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = cfg.MinInterval
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(cfg.MaxInterval, cfg.RetryMin)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &Runner{cfg: cfg, trigger: make(chan struct{}, 1)}, nil
}

// Run asks for a sync as soon as the rate limit allows. Requests made while
// one is pending coalesce into it; a request made during a sync causes one
// more sync after it.
func (r *Runner) Run() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Loop runs syncs until ctx is done. The first sync happens at the first
// Run (or after MaxInterval).
func (r *Runner) Loop(ctx context.Context) {
	c := r.cfg.Clock
	bucket := tokenBucket{burst: float64(r.cfg.Burst), tokens: float64(r.cfg.Burst), every: r.cfg.MinInterval, last: c.Now()}
	next := c.NewTimer(r.cfg.MaxInterval)
	defer next.Stop()
	var backoff time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.trigger:
		case <-next.C():
		}
		for {
			wait := bucket.take(c.Now())
			if wait == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-c.After(wait):
			}
		}
		// Everything recorded up to here is covered by this run.
		select {
		case <-r.trigger:
		default:
		}
		interval := r.cfg.MaxInterval
		if err := r.cfg.Sync(ctx); err != nil {
			backoff = min(max(2*backoff, r.cfg.RetryMin), r.cfg.RetryMax)
			interval = min(backoff, interval)
		} else {
			backoff = 0
		}
		if !next.Stop() {
			select {
			case <-next.C():
			default:
			}
		}
		next.Reset(interval)
	}
}

// tokenBucket allows burst runs at once, refilled at one per every.
type tokenBucket struct {
	burst, tokens float64
	every         time.Duration
	last          time.Time
}

// take consumes a token and returns 0, or returns how long to wait for one.
func (b *tokenBucket) take(now time.Time) time.Duration {
	b.tokens = min(b.burst, b.tokens+float64(now.Sub(b.last))/float64(b.every))
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration(math.Ceil((1 - b.tokens) * float64(b.every)))
}
