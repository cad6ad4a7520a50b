package generator_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// otlpReceiver stands in for the collector: an OTLP/gRPC trace receiver
// on loopback (plaintext HTTP/2, as the sidecars' weft-otel-collector
// cluster speaks) that keeps every span it got, so tests check that
// exports succeed and what they carry.
type otlpReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	port uint32

	mu      sync.Mutex
	spans   []receivedSpan
	exports int
}

// receivedSpan is one exported span, IDs in lower-case hex.
type receivedSpan struct {
	service                   string // the resource's service.name
	traceID, spanID, parentID string
	name                      string
	kind                      tracepb.Span_SpanKind
	attrs                     map[string]string
}

func (s receivedSpan) String() string {
	return fmt.Sprintf("%s %s %s trace=%s span=%s parent=%s", s.service, s.kind, s.name, s.traceID, s.spanID, s.parentID)
}

func startOTLPReceiver(t testing.TB) *otlpReceiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{port: uint32(l.Addr().(*net.TCPAddr).Port)}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, r)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return r
}

// Export implements the OTLP TraceService.
func (r *otlpReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exports++
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				attrs := map[string]string{}
				for _, kv := range s.GetAttributes() {
					attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
				}
				r.spans = append(r.spans, receivedSpan{
					service: service,
					traceID: hex.EncodeToString(s.GetTraceId()), spanID: hex.EncodeToString(s.GetSpanId()),
					parentID: hex.EncodeToString(s.GetParentSpanId()),
					name:     s.GetName(), kind: s.GetKind(), attrs: attrs,
				})
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// received is a copy of the spans so far.
func (r *otlpReceiver) received() []receivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedSpan(nil), r.spans...)
}

// waitSpans polls until done accepts the spans received so far, and
// returns them; it fails the test after timeout.
func (r *otlpReceiver) waitSpans(t testing.TB, timeout time.Duration, done func([]receivedSpan) bool) []receivedSpan {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		spans := r.received()
		if done(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			var lines []string
			for _, s := range spans {
				lines = append(lines, "  "+s.String())
			}
			t.Fatalf("after %v the receiver has %d spans:\n%s", timeout, len(spans), strings.Join(lines, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// inTrace are the spans of one trace.
func inTrace(spans []receivedSpan, traceID string) []receivedSpan {
	var out []receivedSpan
	for _, s := range spans {
		if s.traceID == traceID {
			out = append(out, s)
		}
	}
	return out
}
