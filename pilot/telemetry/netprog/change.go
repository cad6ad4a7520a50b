// Package netprog traces network programming: how long one EndpointSlice
// change takes to reach every node's Service rules (weft-proxy) and every
// sidecar's Envoy config (pilot, until the proxy ACKs).
//
// The components are separate processes that never pass context to each
// other, so the trace is linked through the object itself: every component
// derives the same trace ID from the slice's UID and resourceVersion (see
// Change.TraceID) and parents its spans on the same derived root span
// context. A tracing backend then shows one trace per slice change with a
// "weft-proxy.sync" span per node and a "pilot.push" span per affected
// proxy. Pilot also emits the root span itself ("endpointslice.change",
// from the slice's last-change-trigger-time until every affected proxy
// answered), which needs the TracerProvider built with IDGenerator.
//
// The package is pure bookkeeping over injected times: callers report what
// they saw and when; nothing here reads a clock except through Config.Now.
package netprog

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// TriggerTimeAnnotation is set by the EndpointSlice controller to the time
// of the change (pod ready, pod deleted, ...) that caused the slice update.
// kube-proxy measures network-programming latency from it, and so do we.
const TriggerTimeAnnotation = corev1.EndpointsLastChangeTriggerTime

// TracerName is the instrumentation scope of every span this package
// creates.
const TracerName = "github.com/weftmesh/weft/pilot/telemetry/netprog"

// Span names, shared by the components and by whoever reads the traces
// (meshctl, e2e tests).
const (
	SpanChange = "endpointslice.change"
	SpanSync   = "weft-proxy.sync"
	SpanPush   = "pilot.push"
)

// Attribute keys. Kubernetes names follow the OpenTelemetry semantic
// conventions where they exist (k8s.namespace.name, k8s.node.name); the
// rest are Weft's own.
const (
	AttrNamespace       = attribute.Key("k8s.namespace.name")
	AttrNode            = attribute.Key("k8s.node.name")
	AttrSliceName       = attribute.Key("weft.endpointslice.name")
	AttrSliceUID        = attribute.Key("weft.endpointslice.uid")
	AttrResourceVersion = attribute.Key("weft.endpointslice.resource_version")
	AttrDeleted         = attribute.Key("weft.endpointslice.deleted")
	AttrService         = attribute.Key("weft.service.name")
	AttrSuperseded      = attribute.Key("weft.superseded")
	AttrRulesWritten    = attribute.Key("weft.proxy.rules_written")
	AttrSyncMode        = attribute.Key("weft.proxy.sync_mode")
	AttrProxyID         = attribute.Key("weft.xds.proxy_id")
	AttrTypeURLs        = attribute.Key("weft.xds.type_urls")
	AttrStatus          = attribute.Key("weft.xds.status")
	AttrAffected        = attribute.Key("weft.proxies.affected")
	AttrNACKed          = attribute.Key("weft.proxies.nacked")
)

// Change is one observed version of an EndpointSlice: what identifies it
// across components (UID, ResourceVersion, Deleted) and when this component
// saw it.
type Change struct {
	Namespace, Name string
	// Service owns the slice (label kubernetes.io/service-name).
	Service string
	UID     string
	// ResourceVersion is the version seen; every watcher of the API server
	// sees the same value for the same write. Deletes ignore it (see
	// TraceID).
	ResourceVersion string
	Deleted         bool
	// Trigger is the slice's last-change-trigger-time; zero when absent.
	Trigger time.Time
	// Seen is when this component observed the change: the start of its
	// span.
	Seen time.Time
}

// FromEndpointSlice describes one informer event of es. deleted is true
// for a delete event.
func FromEndpointSlice(es *discoveryv1.EndpointSlice, deleted bool, seen time.Time) Change {
	c := Change{
		Namespace: es.Namespace, Name: es.Name, Service: es.Labels[discoveryv1.LabelServiceName],
		UID: string(es.UID), ResourceVersion: es.ResourceVersion, Deleted: deleted, Seen: seen,
	}
	if v, ok := es.Annotations[TriggerTimeAnnotation]; ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			c.Trigger = t
		}
	}
	return c
}

// Traceable reports whether the change carries what the trace ID is
// derived from (objects from a fake client may not).
func (c Change) Traceable() bool {
	return c.UID != "" && (c.Deleted || c.ResourceVersion != "")
}

// ids derives the trace ID and the root span ID:
//
//	sha256("weft.netprog/v1" 0x00 uid 0x00 resourceVersion)   for an add or update
//	sha256("weft.netprog/v1" 0x00 uid 0x00 "deleted")          for a delete
//
// bytes 0-15 are the trace ID and bytes 16-23 the root span ID. A delete
// uses the UID alone because a watch delivers the delete with a new
// resourceVersion while pilot's model only learns the key; a UID is deleted
// once, so the ID stays unique.
func (c Change) ids() (trace.TraceID, trace.SpanID) {
	h := sha256.New()
	h.Write([]byte("weft.netprog/v1\x00"))
	h.Write([]byte(c.UID))
	h.Write([]byte{0})
	if c.Deleted {
		h.Write([]byte("deleted"))
	} else {
		h.Write([]byte(c.ResourceVersion))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var tid trace.TraceID
	var sid trace.SpanID
	copy(tid[:], sum[:16])
	copy(sid[:], sum[16:24])
	// All-zero IDs are invalid in W3C trace context; 2^-64 odds, but cheap.
	if !tid.IsValid() {
		tid[15] = 1
	}
	if !sid.IsValid() {
		sid[7] = 1
	}
	return tid, sid
}

// TraceID is the trace every component's spans for this change belong to.
func (c Change) TraceID() trace.TraceID {
	tid, _ := c.ids()
	return tid
}

// Sampled decides, identically in every component, whether the change is
// traced: like the SDK's TraceIDRatioBased sampler, it compares the trace
// ID's upper 63 bits against ratio, so nodes and pilot agree without
// talking. ratio >= 1 traces everything; ratio <= 0 nothing.
func (c Change) Sampled(ratio float64) bool {
	if ratio >= 1 {
		return true
	}
	if ratio <= 0 {
		return false
	}
	tid := c.TraceID()
	x := binary.BigEndian.Uint64(tid[8:16]) >> 1
	return x < uint64(ratio*(1<<63))
}

// RootSpanContext is the derived root of the change's trace. Components
// parent their spans on it; pilot also emits it (see IDGenerator).
func (c Change) RootSpanContext() trace.SpanContext {
	tid, sid := c.ids()
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true,
	})
}

// parent returns ctx with the derived root as remote parent.
func (c Change) parent(ctx context.Context) context.Context {
	return trace.ContextWithRemoteSpanContext(ctx, c.RootSpanContext())
}

// attrs are the attributes every span of the change carries.
func (c Change) attrs() []attribute.KeyValue {
	out := []attribute.KeyValue{
		AttrNamespace.String(c.Namespace),
		AttrSliceName.String(c.Name),
		AttrSliceUID.String(c.UID),
		AttrResourceVersion.String(c.ResourceVersion),
	}
	if c.Service != "" {
		out = append(out, AttrService.String(c.Service))
	}
	if c.Deleted {
		out = append(out, AttrDeleted.Bool(true))
	}
	return out
}

// sameObject reports whether two changes are versions of one slice.
func (c Change) sameObject(o Change) bool {
	return c.Namespace == o.Namespace && c.Name == o.Name
}
