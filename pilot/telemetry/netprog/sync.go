package netprog

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// SyncRecorder turns weft-proxy's rule syncs into "weft-proxy.sync" spans,
// one per EndpointSlice change a sync programmed, each starting when the
// node saw the change and ending when iptables-restore applied it.
type SyncRecorder struct {
	tracer trace.Tracer
	node   string
	ratio  float64
}

// SyncConfig configures a SyncRecorder.
type SyncConfig struct {
	// TracerProvider creates the spans; nil records nothing.
	TracerProvider trace.TracerProvider
	// Node is this node's name (attribute k8s.node.name).
	Node string
	// SampleRatio is Change.Sampled's ratio; zero means 1 (every change),
	// and every component must use the same value.
	SampleRatio float64
}

// NewSyncRecorder returns a recorder; with a nil TracerProvider it does
// nothing, so callers need no nil checks.
func NewSyncRecorder(cfg SyncConfig) *SyncRecorder {
	tp := cfg.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	if cfg.SampleRatio == 0 {
		cfg.SampleRatio = 1
	}
	return &SyncRecorder{tracer: tp.Tracer(TracerName), node: cfg.Node, ratio: cfg.SampleRatio}
}

// Sync is the outcome of one successful sync.
type Sync struct {
	// End is when the rules were in the kernel.
	End time.Time
	// Full is a complete rewrite rather than a partial one.
	Full bool
	// RulesWritten is how many rules the iptables-restore carried.
	RulesWritten int
}

// Synced records the sync that programmed changes. A change followed by a
// newer version of the same slice in the same batch is marked superseded:
// the kernel holds the newer state, which includes the older change's
// effect, so both traces end here.
func (r *SyncRecorder) Synced(ctx context.Context, changes []Change, s Sync) {
	mode := "partial"
	if s.Full {
		mode = "full"
	}
	for i, c := range changes {
		if !c.Traceable() || !c.Sampled(r.ratio) {
			continue
		}
		superseded := false
		for _, later := range changes[i+1:] {
			superseded = superseded || later.sameObject(c)
		}
		start := c.Seen
		if start.After(s.End) {
			start = s.End
		}
		_, span := r.tracer.Start(c.parent(ctx), SpanSync,
			trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(c.attrs()...),
			trace.WithAttributes(AttrNode.String(r.node), AttrRulesWritten.Int(s.RulesWritten),
				AttrSyncMode.String(mode), AttrSuperseded.Bool(superseded)))
		span.SetStatus(codes.Ok, "")
		span.End(trace.WithTimestamp(s.End))
	}
}
