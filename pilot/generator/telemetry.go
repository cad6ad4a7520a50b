package generator

import (
	"fmt"
	"slices"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	envdetectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/tracers/opentelemetry/resource_detectors/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weftmesh/weft/pilot/model"
	"github.com/weftmesh/weft/pilot/telemetry/envoystats"
)

// Telemetry is the data-plane telemetry pilot configures in every sidecar
// by default: mesh configuration from pilot's flags. Telemetry resources
// (model.TelemetrySettings, per namespace and mesh-wide in the root
// namespace) override it field by field; see AccessLog.For and
// Telemetry.TracingFor. Request stats need nothing here: the agent's
// bootstrap tags them (pilot/telemetry/envoystats), keyed on the cluster
// names this package generates.
type Telemetry struct {
	// AccessLog selects the workloads whose sidecars log.
	AccessLog AccessLog
	// Tracing, if set, makes every sidecar report spans with Envoy's
	// OpenTelemetry tracer and propagate W3C trace context. Without it no
	// Telemetry resource can turn tracing on: it names the collector.
	Tracing *Tracing
	// RequestMetricsDisabled turns the request metrics off by default
	// (pilot's --request-metrics=false); Telemetry resources override it,
	// see RequestMetricsFor. The zero value records them, as pilot does.
	RequestMetricsDisabled bool
}

// AccessLog turns on JSON access logs, one line per request (HTTP) or
// connection (TCP) a workload receives, on its sidecar's stdout
// (`kubectl logs -c weft-sidecar`). Logs are written by the server side's
// sidecar, which alone knows the caller's verified identity
// (source_principal); the outbound side would need per-workload copies of
// the shared outbound config.
type AccessLog struct {
	// Enabled logs for every workload in Namespaces, or in every namespace
	// when Namespaces is empty.
	Enabled    bool
	Namespaces []string
}

// LabelAccessLog on a pod ("true" or "false") overrides AccessLog for that
// workload: opt a single workload in without enabling a namespace, or out
// of a namespace that logs.
const LabelAccessLog = "telemetry.weft.dev/access-log"

// For reports whether pod's sidecar logs, with the precedence of
// Istio's Telemetry API: the pod label, then the Telemetry settings of
// its namespace (over the root namespace's, already merged in s), then
// the flags in a.
func (a AccessLog) For(pod *model.Pod, s model.TelemetrySettings) bool {
	switch pod.Labels[LabelAccessLog] {
	case "true":
		return true
	case "false":
		return false
	}
	if s.AccessLogDisabled.Set {
		return !s.AccessLogDisabled.Value
	}
	return a.Enabled && (len(a.Namespaces) == 0 || slices.Contains(a.Namespaces, pod.Namespace))
}

// Tracing points sidecars at an OTLP/gRPC collector
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/trace/v3/opentelemetry.proto).
type Tracing struct {
	// CollectorHost and CollectorPort address the collector (a Service
	// DNS name, resolved by Envoy: STRICT_DNS), for example
	// weft-otel-collector.weft-system.svc.cluster.local:4317.
	CollectorHost string
	CollectorPort uint32
	// SamplingPercent is the share of requests without a sampling
	// decision (no traceparent) that start a trace; zero means 1%, as in
	// Istio. A sampled traceparent from the caller is always followed. A
	// Telemetry's randomSamplingPercentage overrides it (and there 0
	// means 0: TracingSetting is exact).
	SamplingPercent float64
	// Off makes tracing opt-in: the collector is known, so a Telemetry
	// resource can turn tracing on for a namespace (or, in the root
	// namespace, the mesh), but without one the sidecars do not trace.
	// Envoy's tracer costs every request it sees, sampled or not
	// (docs/observability.md, "Tracing: what a request costs").
	Off bool
}

// ClusterOTelCollector is the cluster spans are sent to.
const ClusterOTelCollector = "weft-otel-collector"

// DefaultSamplingPercent is Tracing.SamplingPercent's default.
const DefaultSamplingPercent = 1.0

// validate rejects settings Envoy would reject later, per proxy.
func (t Telemetry) validate() error {
	if t.Tracing == nil {
		return nil
	}
	if t.Tracing.CollectorHost == "" || t.Tracing.CollectorPort == 0 || t.Tracing.CollectorPort > 65535 {
		return fmt.Errorf("tracing collector %q port %d: want a host and a port", t.Tracing.CollectorHost, t.Tracing.CollectorPort)
	}
	if p := t.Tracing.SamplingPercent; p < 0 || p > 100 {
		return fmt.Errorf("tracing sampling %v%%: want 0-100", p)
	}
	return nil
}

// TracingSetting is the tracing in force in one namespace, resolved from
// the flags and the Telemetry resources: off (the zero value) or on with
// an exact sampling percentage. It is comparable, so the xDS server keys
// shared outbound config by it.
type TracingSetting struct {
	// CollectorHost and CollectorPort are Tracing's; empty when off.
	CollectorHost string
	CollectorPort uint32
	// SamplingPercent is exact: 0 samples no request without a sampled
	// traceparent.
	SamplingPercent float64
}

// On reports whether the sidecars trace.
func (s TracingSetting) On() bool { return s.CollectorHost != "" }

// TracingFor resolves the tracing of a namespace whose merged Telemetry
// settings are s: off without a collector (the flags name none) or when
// s disables it; else on, sampling s's percentage or the flags'.
func (t Telemetry) TracingFor(s model.TelemetrySettings) TracingSetting {
	tr := t.Tracing
	if tr == nil || s.TracingDisabled.Or(tr.Off) {
		return TracingSetting{}
	}
	pct := tr.SamplingPercent
	if pct == 0 {
		pct = DefaultSamplingPercent
	}
	return TracingSetting{CollectorHost: tr.CollectorHost, CollectorPort: tr.CollectorPort, SamplingPercent: s.SamplingPercent.Or(pct)}
}

// collector is the tracing of the traced outbound listener: on (with the
// flags' collector, sampling left to the detours) whenever pilot knows a
// collector, whatever a namespace says. Keeping that listener, its SRDS
// scopes and the collector cluster in place keeps Envoy's one SRDS watch
// alive: a listener added again later gets a new watch, which Envoy does
// not give the scopes it already has (a delta wildcard subscription is not
// re-requested), so its requests would find no route. A namespace's
// switch changes only its route tables and inbound listener.
func (t Telemetry) collector() TracingSetting {
	if t.Tracing == nil {
		return TracingSetting{}
	}
	return TracingSetting{CollectorHost: t.Tracing.CollectorHost, CollectorPort: t.Tracing.CollectorPort}
}

// hcmTracing is the tracing block of the traced internal listeners'
// connection managers (tracedetour.go): it traces every request it gets,
// since the detour routes sampled already (a traceparent's flag still
// wins). The service name comes from the environment resource detector,
// which reads OTEL_RESOURCE_ATTRIBUTES the agent sets for Envoy from the
// pod (agent.EnvoyResourceEnv): the config itself stays the same for every
// proxy. The OpenTelemetry tracer propagates W3C traceparent/tracestate.
func (s TracingSetting) hcmTracing() *hcmv3.HttpConnectionManager_Tracing {
	return &hcmv3.HttpConnectionManager_Tracing{
		RandomSampling: &typev3.Percent{Value: 100},
		Provider: &tracev3.Tracing_Http{
			Name: "envoy.tracers.opentelemetry",
			ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: mustAny(&tracev3.OpenTelemetryConfig{
				GrpcService: &corev3.GrpcService{
					TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: ClusterOTelCollector}},
					Timeout:         duration(DefaultConnectTimeout / 4),
				},
				ServiceName: "weft-sidecar",
				ResourceDetectors: []*corev3.TypedExtensionConfig{{
					Name:        "envoy.tracers.opentelemetry.resource_detectors.environment",
					TypedConfig: mustAny(&envdetectorv3.EnvironmentResourceDetectorConfig{}),
				}},
			})},
		},
	}
}

// collectorCluster reaches the collector over HTTP/2 (OTLP/gRPC) in
// plaintext; Envoy's own traffic (UID 1337) bypasses the redirect.
func (s TracingSetting) collectorCluster(opts Options) *clusterv3.Cluster {
	c := baseCluster(opts, ClusterOTelCollector, model.ProtocolHTTP2)
	c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
	c.LoadAssignment = &endpointv3.ClusterLoadAssignment{
		ClusterName: ClusterOTelCollector,
		Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{lbEndpoint(s.CollectorHost, s.CollectorPort, nil)},
		}},
	}
	return c
}

// accessLog is the JSON access log of pod's inbound listener. Constant
// fields name the workload with the labels of its stats, so logs and
// metrics join on the same values.
func accessLog(pod *model.Pod, http bool) *accesslogv3.AccessLog {
	fields := map[string]string{
		"start_time":                    "%START_TIME%",
		"duration_ms":                   "%DURATION%",
		"bytes_received":                "%BYTES_RECEIVED%",
		"bytes_sent":                    "%BYTES_SENT%",
		"response_flags":                "%RESPONSE_FLAGS%",
		"downstream_remote_address":     "%DOWNSTREAM_REMOTE_ADDRESS%",
		"source_principal":              "%DOWNSTREAM_PEER_URI_SAN%",
		"upstream_cluster":              "%UPSTREAM_CLUSTER%",
		"upstream_host":                 "%UPSTREAM_HOST%",
		"direction":                     "inbound",
		envoystats.TagWorkload:          envoystats.WorkloadName(pod.Name),
		envoystats.TagWorkloadNamespace: pod.Namespace,
	}
	if http {
		for k, v := range map[string]string{
			"method":        "%REQ(:METHOD)%",
			"path":          "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
			"protocol":      "%PROTOCOL%",
			"authority":     "%REQ(:AUTHORITY)%",
			"response_code": "%RESPONSE_CODE%",
			"user_agent":    "%REQ(USER-AGENT)%",
			"request_id":    "%REQ(X-REQUEST-ID)%",
			"traceparent":   "%REQ(TRACEPARENT)%",
		} {
			fields[k] = v
		}
	}
	format := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for k, v := range fields {
		format.Fields[k] = structpb.NewStringValue(v)
	}
	return &accesslogv3.AccessLog{
		Name: "envoy.access_loggers.stdout",
		ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: mustAny(&streamv3.StdoutAccessLog{
			AccessLogFormat: &streamv3.StdoutAccessLog_LogFormat{LogFormat: &corev3.SubstitutionFormatString{
				Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: format},
			}},
		})},
	}
}

// applyInboundTelemetry adds the access log and the tracing detour
// (tracedetour.go) to a proxy's own, freshly generated resources (nothing
// there is shared, so editing in place is safe), with the traced internal
// listener of each HTTP port (reporting to the collector cluster of the
// outbound part). s are the Telemetry settings of the pod's namespace.
func applyInboundTelemetry(opts Options, s model.TelemetrySettings, pod *model.Pod, res *Resources) {
	logs := opts.Telemetry.AccessLog.For(pod, s)
	tr := opts.Telemetry.TracingFor(s)
	if !logs && !tr.On() {
		return
	}
	traced := map[string]bool{}
	var listeners []*listenerv3.Listener
	for _, l := range res.Listeners {
		if l.GetName() != ListenerInbound {
			continue
		}
		// Every chain has its own filters (applyInboundRequestMetrics).
		for _, fc := range l.GetFilterChains() {
			// Mesh callers' sidecars drew the random sample already.
			mtls := fc.GetTransportSocket() != nil
			for _, f := range fc.GetFilters() {
				editFilter(f, func(h *hcmv3.HttpConnectionManager) {
					if logs {
						h.AccessLog = append(h.AccessLog, accessLog(pod, true))
					}
					if !tr.On() {
						return
					}
					rc := h.GetRouteConfig() // inboundHCM's, named after its cluster
					cluster := rc.GetName()
					for _, vh := range rc.GetVirtualHosts() {
						vh.Routes = slices.Concat(tr.detourRoutes(TracedInboundName(cluster), "", !mtls), vh.Routes)
					}
					if !traced[cluster] {
						traced[cluster] = true
						l, c := tr.tracedInbound(opts, cluster, h.GetStatPrefix())
						listeners = append(listeners, l)
						res.Clusters = append(res.Clusters, c)
					}
				}, func(t *tcpproxyv3.TcpProxy) {
					if logs {
						t.AccessLog = append(t.AccessLog, accessLog(pod, false))
					}
				})
			}
		}
	}
	res.Listeners = append(res.Listeners, listeners...)
}

// meshTracing is the tracing a Service's shared outbound fragment is built
// with: the flags under the root namespace's Telemetry. Namespaces whose
// own Telemetry changes it get re-edited copies of the HTTP filters when
// their outbound listener is assembled (ServiceConfig.filterFor).
func meshTracing(opts Options, v *model.View) TracingSetting {
	return opts.Telemetry.TracingFor(v.Telemetry(v.RootNamespace()))
}

// applyOutboundTelemetry puts the tracing detour (tracedetour.go) at the
// top of a Service's freshly built route tables and records the setting,
// so assembly can tell which namespaces need other tables.
func applyOutboundTelemetry(tr TracingSetting, sc *ServiceConfig) {
	sc.tracing = tr
	if !tr.On() {
		return
	}
	for i, r := range sc.Routes {
		sc.Routes[i] = tr.withDetour(r)
	}
}

// routesFor are the route tables for a namespace whose tracing is tr: the
// fragment's own when tr is the setting they were built with (the common
// case, shared by every namespace), else copies with tr's detour or none.
// Copies are kept per setting, so a namespace with its own Telemetry
// costs one copy per Service and setting while the fragment lives (until
// the Service's inputs change), not one per push.
func (sc *ServiceConfig) routesFor(tr TracingSetting) []*routev3.RouteConfiguration {
	if tr == sc.tracing || len(sc.Routes) == 0 {
		return sc.Routes
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if rs, ok := sc.variants[tr]; ok {
		return rs
	}
	rs := make([]*routev3.RouteConfiguration, len(sc.Routes))
	for i, r := range sc.Routes {
		r = withoutDetour(r)
		if tr.On() {
			r = tr.withDetour(r)
		}
		rs[i] = r
	}
	if sc.variants == nil {
		sc.variants = map[TracingSetting][]*routev3.RouteConfiguration{}
	}
	sc.variants[tr] = rs
	return rs
}

// editFilter unpacks an HTTP connection manager or TCP proxy filter, lets
// the matching function change it and packs it again; other filters (RBAC)
// are left alone.
func editFilter(f *listenerv3.Filter, hcm func(*hcmv3.HttpConnectionManager), tcp func(*tcpproxyv3.TcpProxy)) {
	switch {
	case f.GetName() == wellknown.HTTPConnectionManager && hcm != nil:
		h := &hcmv3.HttpConnectionManager{}
		unpack(f, h)
		hcm(h)
		f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(h)}
	case f.GetName() == wellknown.TCPProxy && tcp != nil:
		t := &tcpproxyv3.TcpProxy{}
		unpack(f, t)
		tcp(t)
		f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t)}
	}
}

// unpack reads a filter this package generated a moment ago, which cannot
// fail; a failure is a programming error, as in mustAny.
func unpack(f *listenerv3.Filter, m proto.Message) {
	if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
		panic(fmt.Sprintf("unpack %s: %v", f.GetName(), err))
	}
}
