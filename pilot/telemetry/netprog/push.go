package netprog

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Result is how a push to one proxy ended.
type Result string

// Results, from best to worst; a change's result is the worst of its
// pushes'.
const (
	ACK          Result = "ACK"
	NACK         Result = "NACK"
	Timeout      Result = "TIMEOUT"
	Disconnected Result = "DISCONNECTED"
)

func worse(a, b Result) Result {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

func (r Result) rank() int {
	switch r {
	case ACK:
		return 1
	case Disconnected:
		return 2
	case Timeout:
		return 3
	case NACK:
		return 4
	}
	return 0
}

// PushConfig configures Pushes.
type PushConfig struct {
	// TracerProvider creates the spans; nil or a no-op provider records
	// none (the metrics callbacks still run).
	TracerProvider trace.TracerProvider
	// SampleRatio is Change.Sampled's ratio; zero means 1.
	SampleRatio float64
	// Timeout ends a push nobody answered (a proxy that never ACKs); zero
	// means two minutes.
	Timeout time.Duration
	// MaxPending bounds the changes tracked at once (a stuck push loop
	// must not grow memory without bound); zero means 10000.
	MaxPending int
	// Now is time.Now when nil.
	Now func() time.Time
	// OnPush is called when a push to one proxy is answered, with the time
	// from setting its snapshot to the answer.
	OnPush func(d time.Duration, r Result)
	// OnConverged is called once per change that reached at least one
	// proxy, with the time from seeing the change until the last affected
	// proxy answered, and the worst result.
	//
	// Both run outside Pushes' lock, possibly concurrently (answers arrive
	// on every proxy's stream), and may be slow without holding anyone up.
	OnConverged func(d time.Duration, r Result)
}

// Pushes tracks, for pilot, which EndpointSlice changes went to which
// proxies in which pushes, and ends their spans when the proxies answer.
//
// Protocol, in model generations (each model write bumps it):
//   - Seen(change, gen) when the model recorded the change at gen;
//   - Pushed(proxy, gen, ...) when the proxy's snapshot built from a view at
//     gen was set, or Unchanged(proxy, gen) when it did not change: changes
//     after the proxy's previous view and up to gen are attributed to this
//     push, if affected says they touch the proxy;
//   - Answered(proxy, typeURL, version, nack, ...) for each ACK or NACK;
//   - RoundDone(gen) once every connected proxy was pushed from a view at
//     gen: from then on the set of affected proxies of changes up to gen
//     is known, and a change finishes when all of them answered.
//
// A later push's ACK answers every earlier push still waiting for that
// type: a snapshot is the whole state, so the newer version includes the
// older change (its span says weft.superseded=true).
//
// Every method decides under one lock what ended and queues it; the spans
// and the OnPush/OnConverged calls are made outside the lock, by the
// emitter goroutine after Start, else by the caller after unlocking (see
// ended). Spans carry explicit timestamps, so emitting them a moment later
// changes nothing in the data, and the goroutines that report answers
// (pilot's xDS streams) never wait for the SDK.
type Pushes struct {
	cfg     PushConfig
	tracer  trace.Tracer
	tracing bool // a TracerProvider was given
	// noRoot: the TracerProvider ignores forced root IDs (it was not built
	// with IDGenerator), so no root span is emitted and the push spans
	// carry the change's attributes themselves. Decided in NewPushes.
	noRoot bool

	mu       sync.Mutex
	changes  []*pendingChange
	proxies  map[string]*proxyState
	typeURLs map[typeKey]attribute.KeyValue // weft.xds.type_urls, built once per combination
	queue    ended                          // finished, not emitted yet
	running  bool                           // the emitter (Start) drains the queue
	wake     chan struct{}                  // tells the emitter the queue has work
}

type pendingChange struct {
	Change
	gen     uint64
	sampled bool
	// parent, attrs and pushAttrs are computed once per change, not per
	// span.
	parent     context.Context
	attrs      []attribute.KeyValue // the root span's
	pushAttrs  []attribute.KeyValue // what push spans repeat of attrs
	determined bool
	pending    int // pushes not answered yet
	affected   int
	failed     int
	result     Result
	last       time.Time
}

type proxyState struct {
	gen    uint64
	pushes []*push
}

// push is one snapshot set for a proxy. Once finished it is immutable, so
// spans are built from it after the lock is released.
type push struct {
	proxy string
	at    time.Time
	// await lists the types the push waits for with the versions it sent
	// (only those matter: see Answered); left counts the unanswered ones.
	await      []awaited
	left       int
	typeURLs   attribute.KeyValue
	changes    []*pendingChange
	superseded bool
}

type awaited struct {
	url, version string
	answered     bool
}

// NewPushes returns an empty tracker.
func NewPushes(cfg PushConfig) *Pushes {
	tp := cfg.TracerProvider
	// Setup hands out a no-op provider when no collector is configured:
	// skip the span bookkeeping then, not only the export.
	_, isNoop := tp.(noop.TracerProvider)
	tracing := tp != nil && !isNoop
	if !tracing {
		tp = noop.NewTracerProvider()
	}
	if cfg.SampleRatio == 0 {
		cfg.SampleRatio = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Pushes{cfg: cfg, tracer: tp.Tracer(TracerName), tracing: tracing,
		proxies: map[string]*proxyState{}, typeURLs: map[typeKey]attribute.KeyValue{}, wake: make(chan struct{}, 1)}
	p.noRoot = tracing && !forcesRootIDs(p.tracer)
	return p
}

// Seen records a change the model applied at generation gen.
func (p *Pushes) Seen(c Change, gen uint64) {
	pc := &pendingChange{Change: c, gen: gen, sampled: p.tracing && c.Traceable() && c.Sampled(p.cfg.SampleRatio)}
	if pc.sampled {
		pc.parent, pc.attrs = c.parent(context.Background()), c.attrs()
		if p.noRoot {
			pc.pushAttrs = pc.attrs
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.changes) >= p.cfg.MaxPending {
		p.changes = slices.Delete(p.changes, 0, 1) // forget the oldest; its spans are lost
	}
	p.changes = append(p.changes, pc)
}

// Pending is the number of changes not finished yet (for tests and
// debugging).
func (p *Pushes) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.changes)
}

// Pushed records that proxy's snapshot, built from a view at gen, was set
// with the given per-type versions. await lists the type URLs whose
// version changed and that the proxy will be sent (so will ACK or NACK);
// only their versions are kept, so the caller keeps ownership of both.
// affected says whether a change touched this proxy's config; nil means
// every change did. Pilot calls it before the snapshot is set, so an ACK
// cannot overtake it.
func (p *Pushes) Pushed(proxy string, gen uint64, versions map[string]string, await []string, affected func(Change) bool) {
	pu := &push{proxy: proxy, await: make([]awaited, len(await))}
	for i, u := range await {
		pu.await[i] = awaited{url: u, version: versions[u]}
	}
	slices.SortFunc(pu.await, func(a, b awaited) int { return strings.Compare(a.url, b.url) })
	pu.await = slices.CompactFunc(pu.await, func(a, b awaited) bool { return a.url == b.url })
	pu.left = len(pu.await)
	p.mu.Lock()
	defer p.unlockAndEmit()
	pu.at = p.cfg.Now()
	ps, known := p.proxies[proxy]
	if !known {
		// A new proxy's first snapshot is its initial config, not a
		// change's push; only later changes are attributed to it.
		ps = &proxyState{gen: gen}
		p.proxies[proxy] = ps
	}
	if known {
		for _, c := range p.changes {
			if c.gen > ps.gen && c.gen <= gen && (affected == nil || affected(c.Change)) {
				pu.changes = append(pu.changes, c)
				c.pending++
				c.affected++
			}
		}
	}
	ps.gen = max(ps.gen, gen)
	if p.tracing && len(pu.changes) > 0 {
		pu.typeURLs = p.typeURLsAttr(pu.await)
	}
	if pu.left == 0 {
		p.finish(pu, ACK, "", pu.at)
		return
	}
	ps.pushes = append(ps.pushes, pu)
}

// Unchanged records that proxy's config built from a view at gen was the
// same as before: changes up to gen did not affect it.
func (p *Pushes) Unchanged(proxy string, gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ps, ok := p.proxies[proxy]; ok {
		ps.gen = max(ps.gen, gen)
	}
}

// RoundDone records that every connected proxy was pushed from a view at
// gen or later.
func (p *Pushes) RoundDone(gen uint64) {
	p.mu.Lock()
	defer p.unlockAndEmit()
	now := p.cfg.Now()
	for _, c := range slices.Clone(p.changes) {
		if c.gen <= gen && !c.determined {
			c.determined = true
			if c.last.IsZero() {
				c.last = now
			}
			p.maybeFinish(c)
		}
	}
	p.expire(now)
}

// Answered records an ACK (nack false) or NACK of version of typeURL by
// proxy. It answers the newest push that sent this version and every older
// push still waiting for the type. (A push that did not wait for the type
// sent the version its predecessor did, so looking only at pushes that
// wait for it finds the same ones.)
func (p *Pushes) Answered(proxy, typeURL, version string, nack bool, detail string) {
	p.mu.Lock()
	defer p.unlockAndEmit()
	ps := p.proxies[proxy]
	if ps == nil {
		return
	}
	newest := -1
	for i, pu := range ps.pushes {
		if a := pu.waiting(typeURL); a != nil && a.version == version {
			newest = i
		}
	}
	if newest < 0 {
		return // an answer to a version sent before any tracked push
	}
	now := p.cfg.Now()
	kept := ps.pushes[:0]
	for i, pu := range ps.pushes {
		a := pu.waiting(typeURL)
		if i > newest || a == nil {
			kept = append(kept, pu)
			continue
		}
		if nack {
			p.finish(pu, NACK, detail, now)
			continue
		}
		a.answered = true
		pu.left--
		pu.superseded = pu.superseded || a.version != version
		if pu.left > 0 {
			kept = append(kept, pu)
			continue
		}
		p.finish(pu, ACK, "", now)
	}
	clear(ps.pushes[len(kept):])
	ps.pushes = kept
}

// waiting returns the push's unanswered entry for typeURL, or nil.
func (pu *push) waiting(typeURL string) *awaited {
	for i := range pu.await {
		if a := &pu.await[i]; a.url == typeURL && !a.answered {
			return a
		}
	}
	return nil
}

// Gone records that proxy disconnected: its unanswered pushes end.
func (p *Pushes) Gone(proxy string) {
	p.mu.Lock()
	defer p.unlockAndEmit()
	ps := p.proxies[proxy]
	if ps == nil {
		return
	}
	now := p.cfg.Now()
	for _, pu := range ps.pushes {
		p.finish(pu, Disconnected, "proxy disconnected before answering", now)
	}
	delete(p.proxies, proxy)
}

// Expire ends pushes older than the timeout; pilot calls it periodically
// so a silent proxy cannot hold a trace open forever.
func (p *Pushes) Expire() {
	p.mu.Lock()
	defer p.unlockAndEmit()
	p.expire(p.cfg.Now())
}

func (p *Pushes) expire(now time.Time) {
	for _, ps := range p.proxies {
		kept := ps.pushes[:0]
		for _, pu := range ps.pushes {
			if now.Sub(pu.at) >= p.cfg.Timeout {
				p.finish(pu, Timeout, "no ACK or NACK within "+p.cfg.Timeout.String(), now)
				continue
			}
			kept = append(kept, pu)
		}
		clear(ps.pushes[len(kept):])
		ps.pushes = kept
	}
}

// finish ends one push: it queues the push's metric and spans (one
// "pilot.push" per change it carried) and does the changes' bookkeeping.
func (p *Pushes) finish(pu *push, r Result, detail string, at time.Time) {
	p.queue.pushes = append(p.queue.pushes, endedPush{push: pu, result: r, detail: detail, at: at})
	for _, c := range pu.changes {
		c.pending--
		if r != ACK {
			c.failed++
		}
		c.result = worse(c.result, r)
		if at.After(c.last) {
			c.last = at
		}
		p.maybeFinish(c)
	}
}

// maybeFinish ends a change once its affected proxies are known and all
// answered: it queues the convergence metric and, when sampled, the root
// span.
func (p *Pushes) maybeFinish(c *pendingChange) {
	if !c.determined || c.pending > 0 {
		return
	}
	i := slices.Index(p.changes, c)
	if i < 0 {
		return
	}
	p.changes = slices.Delete(p.changes, i, i+1)
	p.queue.changes = append(p.queue.changes, endedChange{change: c, affected: c.affected, failed: c.failed, result: c.result, last: c.last})
}
