package netprog

import (
	"cmp"
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// ended is what Pushes finished and has not reported yet: the pushes
// answered (or timed out, or disconnected) and the changes complete, in
// the order they finished (a change's push spans before its root). A
// finished push or change is no longer reachable from Pushes' state, so
// reading it unlocked is safe.
type ended struct {
	pushes  []endedPush
	changes []endedChange
}

type endedPush struct {
	push   *push
	result Result
	detail string
	at     time.Time
}

type endedChange struct {
	change           *pendingChange
	affected, failed int
	result           Result
	last             time.Time
}

func (e *ended) len() int { return len(e.pushes) + len(e.changes) }

// reset empties e for reuse, dropping its references.
func (e *ended) reset() {
	clear(e.pushes)
	clear(e.changes)
	e.pushes, e.changes = e.pushes[:0], e.changes[:0]
}

// maxQueued bounds the queue the emitter drains: past it, the callers emit
// themselves (back-pressure rather than unbounded memory or lost spans).
const maxQueued = 1 << 16

// Start emits what Pushes finishes on a goroutine of its own from now on
// until ctx is done; that goroutine emits what is left, then callers emit
// again. pilot starts it: the xDS streams that report answers then only
// queue, which keeps the SDK's deep stacks off them (each grew its small
// stack per span, and the GC shrank it again) and the spans of a change in
// the order they ended. Without Start, callers emit after unlocking.
func (p *Pushes) Start(ctx context.Context) {
	p.mu.Lock()
	p.running = true
	p.mu.Unlock()
	go p.run(ctx)
}

func (p *Pushes) run(ctx context.Context) {
	var batch ended
	var scratch []attribute.KeyValue // the SDK copies span attributes, so one buffer serves every span
	for {
		done := false
		select {
		case <-ctx.Done():
			done = true
		case <-p.wake:
		}
		p.mu.Lock()
		batch, p.queue = p.queue, batch
		if done {
			p.running = false // callers emit from now on
		}
		p.mu.Unlock()
		p.emit(&batch, &scratch)
		batch.reset()
		if done {
			return
		}
	}
}

// unlockAndEmit releases the lock and reports what is queued: it wakes the
// emitter, or, without one (or past maxQueued), emits the queue itself. Methods
// defer it right after locking.
func (p *Pushes) unlockAndEmit() {
	n := p.queue.len()
	if n == 0 {
		p.mu.Unlock()
		return
	}
	if p.running && n < maxQueued {
		p.mu.Unlock()
		select {
		case p.wake <- struct{}{}:
		default: // the emitter has a wake-up pending already
		}
		return
	}
	batch := p.queue
	p.queue = ended{}
	p.mu.Unlock()
	p.emit(&batch, new([]attribute.KeyValue))
}

// emit makes the spans and metric callbacks of what ended; scratch holds
// a span's attributes while it starts.
func (p *Pushes) emit(e *ended, scratch *[]attribute.KeyValue) {
	for _, ep := range e.pushes {
		if p.cfg.OnPush != nil {
			p.cfg.OnPush(ep.at.Sub(ep.push.at), ep.result)
		}
		p.pushSpans(ep, scratch)
	}
	for _, ec := range e.changes {
		if ec.affected > 0 && p.cfg.OnConverged != nil {
			p.cfg.OnConverged(ec.last.Sub(ec.change.Seen), ec.result)
		}
		if ec.change.sampled && !p.noRoot {
			p.rootSpan(ec)
		}
	}
}

// serverKind is allocated once: every push span uses it.
var serverKind = trace.WithSpanKind(trace.SpanKindServer)

// pushSpans emits one "pilot.push" span per sampled change the push
// carried. A change followed by a newer version of the same slice in the
// same push is superseded by it.
func (p *Pushes) pushSpans(e endedPush, scratch *[]attribute.KeyValue) {
	pu := e.push
	for i, c := range pu.changes {
		if !c.sampled {
			continue
		}
		superseded := pu.superseded
		for _, later := range pu.changes[i+1:] {
			superseded = superseded || later.sameObject(c.Change)
		}
		attrs := append((*scratch)[:0], c.pushAttrs...)
		attrs = append(attrs, AttrProxyID.String(pu.proxy), pu.typeURLs,
			AttrStatus.String(string(e.result)), AttrSuperseded.Bool(superseded))
		*scratch = attrs
		_, span := p.tracer.Start(c.parent, SpanPush,
			trace.WithTimestamp(minTime(c.Seen, pu.at)), serverKind, trace.WithAttributes(attrs...))
		if e.result == ACK {
			span.SetStatus(codes.Ok, "")
		} else {
			span.SetStatus(codes.Error, cmp.Or(e.detail, string(e.result)))
		}
		span.End(trace.WithTimestamp(e.at))
	}
}

// rootSpan emits the change's root span with the derived IDs, from the
// trigger time (when the EndpointSlice controller saw the pod change) if
// known, else from when pilot saw the slice.
func (p *Pushes) rootSpan(e endedChange) {
	c := e.change
	start := c.Seen
	if !c.Trigger.IsZero() && c.Trigger.Before(start) {
		start = c.Trigger
	}
	want := c.RootSpanContext()
	_, span := p.tracer.Start(withRootIDs(context.Background(), want), SpanChange,
		trace.WithNewRoot(), trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(c.attrs...),
		trace.WithAttributes(AttrAffected.Int(e.affected), AttrNACKed.Int(e.failed)))
	if got := span.SpanContext(); got.IsValid() && (got.TraceID() != want.TraceID() || got.SpanID() != want.SpanID()) {
		return // NewPushes checked the provider; leave a stray span unended (never exported)
	}
	if e.failed > 0 {
		span.SetStatus(codes.Error, string(e.result))
	} else {
		span.SetStatus(codes.Ok, "")
	}
	span.End(trace.WithTimestamp(e.last))
}

// forcesRootIDs reports whether the tracer gives a root span the IDs
// withRootIDs asks for (its provider was built with IDGenerator). If not,
// a root span would start a separate trace. The probe span is never
// ended, so never exported.
func forcesRootIDs(t trace.Tracer) bool {
	want := Change{UID: "weft.netprog/probe", ResourceVersion: "0"}.RootSpanContext()
	_, span := t.Start(withRootIDs(context.Background(), want), "weft.netprog.probe", trace.WithNewRoot())
	got := span.SpanContext()
	return !got.IsValid() || got.TraceID() == want.TraceID() && got.SpanID() == want.SpanID()
}

// typeKey is a sorted set of up to four type URLs (pilot sends four
// types), a map key that costs no allocation.
type typeKey struct {
	n    int
	urls [4]string
}

// maxTypeSets bounds the cache of type_urls attributes for callers with
// more types than pilot's four (15 combinations).
const maxTypeSets = 64

// typeURLsAttr returns the weft.xds.type_urls attribute of the awaited
// types. A string-slice attribute is built by reflection, so pilot's few
// combinations are built once and reused. Called under the lock.
func (p *Pushes) typeURLsAttr(await []awaited) attribute.KeyValue {
	urls := func() []string {
		out := make([]string, len(await))
		for i, a := range await {
			out[i] = a.url
		}
		return out
	}
	k := typeKey{n: len(await)}
	if k.n > len(k.urls) {
		return AttrTypeURLs.StringSlice(urls())
	}
	for i, a := range await {
		k.urls[i] = a.url
	}
	kv, ok := p.typeURLs[k]
	if !ok {
		kv = AttrTypeURLs.StringSlice(urls())
		if len(p.typeURLs) < maxTypeSets {
			p.typeURLs[k] = kv
		}
	}
	return kv
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
