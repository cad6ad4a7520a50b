package netprog

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
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
type Pushes struct {
	cfg     PushConfig
	tracer  trace.Tracer
	tracing bool // a TracerProvider was given

	mu      sync.Mutex
	changes []*pendingChange
	proxies map[string]*proxyState
	noRoot  bool // the TracerProvider ignores forced root IDs
}

type pendingChange struct {
	Change
	gen     uint64
	sampled bool
	// parent and attrs are computed once per change, not per span.
	parent     context.Context
	attrs      []attribute.KeyValue
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

type push struct {
	proxy      string
	at         time.Time
	versions   map[string]string
	await      map[string]bool
	typeURLs   []string
	changes    []*pendingChange
	superseded bool
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
	return &Pushes{cfg: cfg, tracer: tp.Tracer(TracerName), tracing: tracing, proxies: map[string]*proxyState{}}
}

// Seen records a change the model applied at generation gen.
func (p *Pushes) Seen(c Change, gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.changes) >= p.cfg.MaxPending {
		p.changes = slices.Delete(p.changes, 0, 1) // forget the oldest; its spans are lost
	}
	pc := &pendingChange{Change: c, gen: gen, sampled: p.tracing && c.Traceable() && c.Sampled(p.cfg.SampleRatio)}
	if pc.sampled {
		pc.parent, pc.attrs = c.parent(context.Background()), c.attrs()
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
// version changed and that the proxy will be sent (so will ACK or NACK).
// affected says whether a change touched this proxy's config; nil means
// every change did.
func (p *Pushes) Pushed(proxy string, gen uint64, versions map[string]string, await []string, affected func(Change) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Now()
	ps, known := p.proxies[proxy]
	if !known {
		// A new proxy's first snapshot is its initial config, not a
		// change's push; only later changes are attributed to it.
		ps = &proxyState{gen: gen}
		p.proxies[proxy] = ps
	}
	pu := &push{proxy: proxy, at: now, versions: maps.Clone(versions), await: map[string]bool{}, typeURLs: slices.Sorted(slices.Values(await))}
	for _, u := range await {
		pu.await[u] = true
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
	if len(pu.await) == 0 {
		p.finish(pu, ACK, "", now)
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
	defer p.mu.Unlock()
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
// push still waiting for the type.
func (p *Pushes) Answered(proxy, typeURL, version string, nack bool, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.proxies[proxy]
	if ps == nil {
		return
	}
	newest := -1
	for i, pu := range ps.pushes {
		if pu.versions[typeURL] == version {
			newest = i
		}
	}
	if newest < 0 {
		return // an answer to a version sent before any tracked push
	}
	now := p.cfg.Now()
	kept := ps.pushes[:0]
	for i, pu := range ps.pushes {
		if i > newest || !pu.await[typeURL] {
			kept = append(kept, pu)
			continue
		}
		if nack {
			p.finish(pu, NACK, detail, now)
			continue
		}
		delete(pu.await, typeURL)
		pu.superseded = pu.superseded || pu.versions[typeURL] != version
		if len(pu.await) > 0 {
			kept = append(kept, pu)
			continue
		}
		p.finish(pu, ACK, "", now)
	}
	clear(ps.pushes[len(kept):])
	ps.pushes = kept
}

// Gone records that proxy disconnected: its unanswered pushes end.
func (p *Pushes) Gone(proxy string) {
	p.mu.Lock()
	defer p.mu.Unlock()
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
	defer p.mu.Unlock()
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

// finish ends one push: its metric, one "pilot.push" span per change it
// carried, and the changes' bookkeeping.
func (p *Pushes) finish(pu *push, r Result, detail string, at time.Time) {
	if p.cfg.OnPush != nil {
		p.cfg.OnPush(at.Sub(pu.at), r)
	}
	for i, c := range pu.changes {
		if c.sampled {
			superseded := pu.superseded
			for _, later := range pu.changes[i+1:] {
				superseded = superseded || later.sameObject(c.Change)
			}
			p.pushSpan(c, pu, r, detail, at, superseded)
		}
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

func (p *Pushes) pushSpan(c *pendingChange, pu *push, r Result, detail string, at time.Time, superseded bool) {
	_, span := p.tracer.Start(c.parent, SpanPush,
		trace.WithTimestamp(minTime(c.Seen, pu.at)), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(c.attrs...),
		trace.WithAttributes(AttrProxyID.String(pu.proxy), AttrTypeURLs.StringSlice(pu.typeURLs),
			AttrStatus.String(string(r)), AttrSuperseded.Bool(superseded)))
	if r == ACK {
		span.SetStatus(codes.Ok, "")
	} else {
		span.SetStatus(codes.Error, cmp.Or(detail, string(r)))
	}
	span.End(trace.WithTimestamp(at))
}

// maybeFinish ends a change once its affected proxies are known and all
// answered: the convergence metric and, when sampled, the root span.
func (p *Pushes) maybeFinish(c *pendingChange) {
	if !c.determined || c.pending > 0 {
		return
	}
	i := slices.Index(p.changes, c)
	if i < 0 {
		return
	}
	p.changes = slices.Delete(p.changes, i, i+1)
	if c.affected > 0 && p.cfg.OnConverged != nil {
		p.cfg.OnConverged(c.last.Sub(c.Seen), c.result)
	}
	if c.sampled && !p.noRoot {
		p.rootSpan(c)
	}
}

// rootSpan emits the change's root span with the derived IDs, from the
// trigger time (when the EndpointSlice controller saw the pod change) if
// known, else from when pilot saw the slice.
func (p *Pushes) rootSpan(c *pendingChange) {
	start := c.Seen
	if !c.Trigger.IsZero() && c.Trigger.Before(start) {
		start = c.Trigger
	}
	want := c.RootSpanContext()
	_, span := p.tracer.Start(withRootIDs(context.Background(), want), SpanChange,
		trace.WithNewRoot(), trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(c.attrs...),
		trace.WithAttributes(AttrAffected.Int(c.affected), AttrNACKed.Int(c.failed)))
	if got := span.SpanContext(); got.IsValid() && (got.TraceID() != want.TraceID() || got.SpanID() != want.SpanID()) {
		// Not built with IDGenerator: the span would start a separate
		// trace. Leave it unended (never exported) and stop trying.
		p.noRoot = true
		return
	}
	if c.failed > 0 {
		span.SetStatus(codes.Error, string(c.result))
	} else {
		span.SetStatus(codes.Ok, "")
	}
	span.End(trace.WithTimestamp(c.last))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
