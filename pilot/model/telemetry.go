package model

import (
	"fmt"
	"time"

	"github.com/weftmesh/weft/api/v1alpha1"
)

// Optional is a setting a Telemetry may leave out (Set false: inherit the
// parent scope's) or set. Unlike a pointer it compares by value, so
// resolved settings can key caches (the xDS server's outbound scopes).
type Optional[T comparable] struct {
	Set   bool
	Value T
}

// Some is a set Optional.
func Some[T comparable](v T) Optional[T] { return Optional[T]{Set: true, Value: v} }

// Or returns the setting if set, else def.
func (o Optional[T]) Or(def T) T {
	if o.Set {
		return o.Value
	}
	return def
}

// over returns o if set, else parent: a child scope's field wins over its
// parent's only where the child sets it.
func (o Optional[T]) over(parent Optional[T]) Optional[T] {
	if o.Set {
		return o
	}
	return parent
}

// TelemetrySettings are the data-plane telemetry settings of a Telemetry
// resource, or of several merged. Fields left unset inherit pilot's flags
// (generator.Telemetry); the pod label telemetry.weft.dev/access-log still
// overrides AccessLogDisabled per workload.
type TelemetrySettings struct {
	// TracingDisabled true: sidecars neither start nor report spans.
	TracingDisabled Optional[bool]
	// SamplingPercent is the share (0-100) of requests without a sampled
	// traceparent that start a trace.
	SamplingPercent Optional[float64]
	// AccessLogDisabled true: no access logs; false: access logs on.
	AccessLogDisabled Optional[bool]
	// MetricsDisabled true: the server's sidecar records no request
	// metrics; false: it does. Clients' request headers follow the root
	// namespace's setting only (generator.Telemetry.RequestMetricsFor).
	MetricsDisabled Optional[bool]
}

// Over merges s over parent field by field: what s sets wins.
func (s TelemetrySettings) Over(parent TelemetrySettings) TelemetrySettings {
	return TelemetrySettings{
		TracingDisabled:   s.TracingDisabled.over(parent.TracingDisabled),
		SamplingPercent:   s.SamplingPercent.over(parent.SamplingPercent),
		AccessLogDisabled: s.AccessLogDisabled.over(parent.AccessLogDisabled),
		MetricsDisabled:   s.MetricsDisabled.over(parent.MetricsDisabled),
	}
}

// SetsTracing reports whether the settings could turn tracing on: tracing
// not disabled and at least one tracing field set. Without a collector
// such a Telemetry has no effect, which its status says.
func (s TelemetrySettings) SetsTracing() bool {
	return (s.TracingDisabled.Set || s.SamplingPercent.Set) && !s.TracingDisabled.Or(false)
}

// TelemetryPolicy is a mesh.weft.dev Telemetry reduced to its settings.
type TelemetryPolicy struct {
	Namespace  string
	Name       string
	Generation int64
	Created    time.Time
	Settings   TelemetrySettings
}

// Key is the Telemetry's namespace/name.
func (p *TelemetryPolicy) Key() Key { return Key{Namespace: p.Namespace, Name: p.Name} }

// TelemetryFromK8s converts a Telemetry. The API server's schema already
// bounds the sampling percentage; it is checked again for objects written
// before the CRD had that rule or by clients that skip validation.
func TelemetryFromK8s(t *v1alpha1.Telemetry) (*TelemetryPolicy, error) {
	out := &TelemetryPolicy{Namespace: t.Namespace, Name: t.Name, Generation: t.Generation, Created: t.CreationTimestamp.Time}
	if tr := t.Spec.Tracing; tr != nil {
		if tr.Disabled != nil {
			out.Settings.TracingDisabled = Some(*tr.Disabled)
		}
		if p := tr.RandomSamplingPercentage; p != nil {
			if *p < 0 || *p > 100 {
				return nil, fmt.Errorf("telemetry %s/%s: randomSamplingPercentage %v: want 0-100", t.Namespace, t.Name, *p)
			}
			out.Settings.SamplingPercent = Some(*p)
		}
	}
	if al := t.Spec.AccessLogging; al != nil && al.Disabled != nil {
		out.Settings.AccessLogDisabled = Some(*al.Disabled)
	}
	if m := t.Spec.Metrics; m != nil && m.Disabled != nil {
		out.Settings.MetricsDisabled = Some(*m.Disabled)
	}
	return out, nil
}

// TelemetryWinner is the Telemetry in force in namespace: the oldest of
// its Telemetries (creationTimestamp, then name), or nil.
func TelemetryWinner(policies []*TelemetryPolicy, namespace string) *TelemetryPolicy {
	var win *TelemetryPolicy
	for _, p := range policies {
		if p.Namespace == namespace {
			win = olderTelemetry(win, p)
		}
	}
	return win
}

// olderTelemetry returns whichever of a and b was created first (then the
// smaller name); b may not be nil.
func olderTelemetry(a, b *TelemetryPolicy) *TelemetryPolicy {
	if a == nil {
		return b
	}
	if c := b.Created.Compare(a.Created); c < 0 || (c == 0 && b.Name < a.Name) {
		return b
	}
	return a
}

// ResolveTelemetry merges the Telemetry settings that apply to namespace:
// its own winning Telemetry over the root namespace's. Unset fields
// remain unset (pilot's flags decide them).
func ResolveTelemetry(policies []*TelemetryPolicy, rootNamespace, namespace string) TelemetrySettings {
	var ns *TelemetryPolicy
	if namespace != rootNamespace {
		ns = TelemetryWinner(policies, namespace)
	}
	return mergeTelemetry(TelemetryWinner(policies, rootNamespace), ns)
}

// mergeTelemetry lays a namespace's Telemetry over the root namespace's;
// either may be nil.
func mergeTelemetry(root, ns *TelemetryPolicy) TelemetrySettings {
	var out TelemetrySettings
	if root != nil {
		out = root.Settings
	}
	if ns != nil {
		out = ns.Settings.Over(out)
	}
	return out
}
