package netprog

import (
	"context"
	"encoding/binary"
	"math/rand/v2"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// IDGenerator returns the SDK ID generator Weft's TracerProviders use
// (pilot/telemetry.Setup installs it). It is the SDK's random generator,
// except that a root span started from a context made by withRootIDs gets
// exactly those IDs: that is how pilot emits a change's root span with the
// span ID every component already parents on, so the trace has a real root
// instead of a dangling parent reference.
func IDGenerator() sdktrace.IDGenerator { return idGenerator{} }

type idGenerator struct{}

type rootIDsKey struct{}

type rootIDs struct {
	tid trace.TraceID
	sid trace.SpanID
}

// withRootIDs asks IDGenerator to give the next root span these IDs.
func withRootIDs(ctx context.Context, sc trace.SpanContext) context.Context {
	return context.WithValue(ctx, rootIDsKey{}, rootIDs{sc.TraceID(), sc.SpanID()})
}

// NewIDs implements sdktrace.IDGenerator.
func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if ids, ok := ctx.Value(rootIDsKey{}).(rootIDs); ok {
		return ids.tid, ids.sid
	}
	var tid trace.TraceID
	for !tid.IsValid() {
		binary.BigEndian.PutUint64(tid[:8], rand.Uint64())
		binary.BigEndian.PutUint64(tid[8:], rand.Uint64())
	}
	return tid, randomSpanID()
}

// NewSpanID implements sdktrace.IDGenerator.
func (idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return randomSpanID() }

func randomSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.BigEndian.PutUint64(sid[:], rand.Uint64())
	}
	return sid
}
