package generator

import (
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	statsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stats/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weftmesh/weft/pilot/model"
	es "github.com/weftmesh/weft/pilot/telemetry/envoystats"
)

// Request metrics name both ends of a request, as Istio's metadata
// exchange and stats filter do, built from Envoy's own parts and recorded
// by the server's sidecar only:
//
//   - The client's sidecar sets HeaderSourceWorkload, HeaderSourceNamespace
//     (from its environment, envoystats.Env*) and HeaderDestinationService
//     on every request, overwriting what the app sent. That is all the
//     outbound side does: three headers per route table, nothing per
//     filter chain, so the outbound listener (one chain per Service port,
//     in every proxy) does not grow. The client's own view stays Envoy's
//     cluster stats, tagged by the bootstrap (pilot/telemetry/envoystats),
//     which also cover destinations without a sidecar.
//   - The server's sidecar records the request with Envoy's stats access
//     logger (envoystats.Metric*, tags envoystats.Tag*, reporter always
//     "destination"), TCP proxies a connection counter and bytes. On its
//     mutual-TLS filter chains the logger reads the client's headers
//     straight from the request (%REQ()%), and the headers reach the app,
//     as Linkerd's l5d-client-id does: moving them into metadata first
//     (header_to_metadata, so they could be removed before the app) cost
//     the server's sidecar ~9 µs more per request in
//     BenchmarkRequestMetrics, a third of what request metrics cost. On
//     plaintext chains the caller is "unknown" and the headers are
//     dropped, so a caller outside the mesh can neither mint label values
//     nor pass for a mesh workload to the app. Nothing is sent back: the
//     server's workload is not revealed to callers.
//
// Every value is a literal, the verified peer certificate, or the
// client's header or, where the client sent none, "unknown" (the route
// table adds it): tags are never empty (a header sent empty, or missing
// from a request Envoy answers before routing, such as an RBAC denial
// from a client that sent no headers, reads "-").
//
// The switch (Telemetry.RequestMetricsFor): a server records when its
// namespace's Telemetry, else the root namespace's, else pilot's flag says
// so. Clients send the headers when the mesh-wide setting (root
// namespace, else flag) is on: the outbound config is shared between
// namespaces and a client cannot know whether the server's namespace
// records. What reaches the app does not depend on the switch: on mTLS
// chains the client's headers, on plaintext chains none.
const (
	// HeaderSourceWorkload (request) is the client's workload.
	HeaderSourceWorkload = "x-weft-source-workload"
	// HeaderSourceNamespace (request) is the client's namespace.
	HeaderSourceNamespace = "x-weft-source-namespace"
	// HeaderDestinationService (request) is the host of the Service the
	// client addressed.
	HeaderDestinationService = "x-weft-destination-service"
)

// exchangeHeaders are the request headers clients' sidecars set, which
// servers' sidecars remove on plaintext chains.
var exchangeHeaders = []string{HeaderSourceWorkload, HeaderSourceNamespace, HeaderDestinationService}

// RequestMetricsFor reports whether request metrics are on where the
// merged Telemetry settings are s: s's setting, else the flag's.
// Generate asks it with the pod's namespace's settings for the server
// side, and with the root namespace's for the clients' request headers.
func (t Telemetry) RequestMetricsFor(s model.TelemetrySettings) bool {
	return !s.MetricsDisabled.Or(t.RequestMetricsDisabled)
}

// statsLoggerName is Envoy's stats access logger
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/extensions/access_loggers/stats/v3/stats.proto),
// marked work-in-progress in Envoy 1.37 (it logs a warning when loaded).
const statsLoggerName = "envoy.access_loggers.stats"

// requestTags are the values of the request metrics' tags on one chain of
// the server's sidecar, as substitution format strings
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/observability/access_log/usage#command-operators).
// reporter is always "destination": only the server records, and the tag
// stays so that queries written for Istio keep working.
type requestTags struct {
	srcWorkload, srcNamespace, srcPrincipal         string
	dstWorkload, dstNamespace, dstService, security string
}

// list is the tag list in a fixed order; http adds the response code and
// takes the protocol from the request.
func (t requestTags) list(http bool) []*statsv3.Config_Tag {
	protocol := literal(es.ProtocolTCP)
	if http {
		protocol = "%PROTOCOL%"
	}
	pairs := [][2]string{
		{es.TagReporter, literal(es.ReporterDestination)},
		{es.TagSourceWorkload, t.srcWorkload},
		{es.TagSourceWorkloadNamespace, t.srcNamespace},
		{es.TagSourcePrincipal, t.srcPrincipal},
		{es.TagDestinationWorkload, t.dstWorkload},
		{es.TagDestinationWorkloadNamespace, t.dstNamespace},
		{es.TagDestinationService, t.dstService},
		{es.TagRequestProtocol, protocol},
		{es.TagConnectionSecurityPolicy, t.security},
	}
	if http {
		pairs = append(pairs, [2]string{es.TagResponseCode, "%RESPONSE_CODE%"})
	}
	out := make([]*statsv3.Config_Tag, 0, len(pairs))
	for _, p := range pairs {
		out = append(out, &statsv3.Config_Tag{Name: p[0], ValueFormat: p[1]})
	}
	return out
}

// httpLogger records one request: a count and three histograms.
func (t requestTags) httpLogger() *accesslogv3.AccessLog {
	stat := func(name string) *statsv3.Config_Stat { return &statsv3.Config_Stat{Name: name, Tags: t.list(true)} }
	histogram := func(name string, unit statsv3.Config_Histogram_Unit, value string) *statsv3.Config_Histogram {
		return &statsv3.Config_Histogram{Stat: stat(name), Unit: unit, ValueFormat: value}
	}
	return statsLogger(&statsv3.Config{
		StatPrefix: es.RequestStatPrefix,
		Counters:   []*statsv3.Config_Counter{{Stat: stat(es.MetricRequests), ValueFixed: wrapperspb.UInt64(1)}},
		Histograms: []*statsv3.Config_Histogram{
			histogram(es.MetricRequestDuration, statsv3.Config_Histogram_Milliseconds, "%DURATION%"),
			histogram(es.MetricRequestBytes, statsv3.Config_Histogram_Bytes, "%BYTES_RECEIVED%"),
			histogram(es.MetricResponseBytes, statsv3.Config_Histogram_Bytes, "%BYTES_SENT%"),
		},
	})
}

// tcpLogger records one closed connection and its bytes.
func (t requestTags) tcpLogger() *accesslogv3.AccessLog {
	stat := func(name string) *statsv3.Config_Stat { return &statsv3.Config_Stat{Name: name, Tags: t.list(false)} }
	return statsLogger(&statsv3.Config{
		StatPrefix: es.RequestStatPrefix,
		Counters: []*statsv3.Config_Counter{
			{Stat: stat(es.MetricTCPConnectionsClosed), ValueFixed: wrapperspb.UInt64(1)},
			{Stat: stat(es.MetricTCPSentBytes), ValueFormat: "%BYTES_SENT%"},
			{Stat: stat(es.MetricTCPReceivedBytes), ValueFormat: "%BYTES_RECEIVED%"},
		},
	})
}

func statsLogger(c *statsv3.Config) *accesslogv3.AccessLog {
	return &accesslogv3.AccessLog{
		Name:       statsLoggerName,
		ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: mustAny(c)},
	}
}

// literal escapes s for a substitution format string.
func literal(s string) string { return strings.ReplaceAll(s, "%", "%%") }

func env(name string) string { return "%ENVIRONMENT(" + name + ")%" }

// requestHeader is the value of a request header, "-" if it is missing.
func requestHeader(name string) string { return "%REQ(" + name + ")%" }

// applyOutboundRequestMetrics adds the source side to a Service's freshly
// built outbound config when the mesh-wide setting (the root namespace's
// Telemetry over the flag) records request metrics: the request headers on
// its route tables, at the route-configuration level, which Envoy applies
// last, so neither the app nor an HTTPRoute header filter can override
// them. destination_service is the Service the client addressed, host.
// Route tables are the fragment's own (not shared with other Services).
func applyOutboundRequestMetrics(opts Options, v *model.View, host string, sc *ServiceConfig) {
	if !opts.Telemetry.RequestMetricsFor(v.Telemetry(v.RootNamespace())) {
		return
	}
	for _, r := range sc.Routes {
		r.RequestHeadersToAdd = append(r.RequestHeadersToAdd,
			overwrite(HeaderSourceWorkload, env(es.EnvWorkloadName)),
			overwrite(HeaderSourceNamespace, env(es.EnvWorkloadNamespace)),
			overwrite(HeaderDestinationService, literal(host)))
	}
}

// applyInboundRequestMetrics adds the destination side to a proxy's own,
// freshly generated inbound listener. Chains with a transport socket
// terminate mesh mTLS: only there are the caller's headers believed, and
// only plaintext chains drop them. Every chain gets its own copy of its
// filters, since the chains of a port share them.
func applyInboundRequestMetrics(opts Options, v *model.View, pod *model.Pod, res *Resources) {
	record := opts.Telemetry.RequestMetricsFor(v.Telemetry(pod.Namespace))
	services := inboundServiceHosts(v, pod)
	for _, l := range res.Listeners {
		if l.GetName() != ListenerInbound {
			continue
		}
		for _, fc := range l.GetFilterChains() {
			service := es.Unknown
			if p := fc.GetFilterChainMatch().GetDestinationPort(); p != nil && services[int32(p.GetValue())] != "" {
				service = services[int32(p.GetValue())]
			}
			side := inboundSide{pod: pod, mtls: fc.GetTransportSocket() != nil, service: service, record: record}
			// The chains of a port share their filter slice, not only
			// its filters: replace both.
			filters := make([]*listenerv3.Filter, 0, len(fc.GetFilters()))
			for _, f := range fc.GetFilters() {
				f = proto.Clone(f).(*listenerv3.Filter)
				editFilter(f, side.editHCM, side.editTCP)
				filters = append(filters, f)
			}
			fc.Filters = filters
		}
	}
}

// inboundSide is what one inbound chain knows: the pod, whether the caller
// proved a mesh identity, the Service the port belongs to, and whether the
// pod's namespace records request metrics.
type inboundSide struct {
	pod     *model.Pod
	mtls    bool
	service string
	record  bool
}

func (s inboundSide) tags() requestTags {
	t := requestTags{
		srcWorkload:  literal(es.Unknown),
		srcNamespace: literal(es.Unknown),
		srcPrincipal: literal(es.Unknown),
		dstWorkload:  literal(es.WorkloadName(s.pod.Name)),
		dstNamespace: literal(s.pod.Namespace),
		dstService:   literal(s.service),
		security:     literal(es.SecurityNone),
	}
	if s.mtls {
		// The chain requires a client certificate with a SPIFFE ID.
		t.srcPrincipal, t.security = "%DOWNSTREAM_PEER_URI_SAN%", literal(es.SecurityMutualTLS)
	}
	return t
}

// editHCM: plaintext chains drop the client headers; mTLS chains that
// record read them and add "unknown" (the port's Service for
// destination_service) where the client sent none. The route table's
// headers apply before the logger runs and after an RBAC denial does not.
func (s inboundSide) editHCM(h *hcmv3.HttpConnectionManager) {
	rc := h.GetRouteConfig() // inboundHCM's route table is inline
	if !s.mtls {
		rc.RequestHeadersToRemove = append(rc.RequestHeadersToRemove, exchangeHeaders...)
	}
	if !s.record {
		return
	}
	tags := s.tags()
	if s.mtls {
		rc.RequestHeadersToAdd = append(rc.RequestHeadersToAdd,
			addIfAbsent(HeaderSourceWorkload, literal(es.Unknown)),
			addIfAbsent(HeaderSourceNamespace, literal(es.Unknown)),
			addIfAbsent(HeaderDestinationService, literal(s.service)))
		tags.srcWorkload, tags.srcNamespace = requestHeader(HeaderSourceWorkload), requestHeader(HeaderSourceNamespace)
		tags.dstService = requestHeader(HeaderDestinationService)
	}
	h.AccessLog = append(h.AccessLog, tags.httpLogger())
}

func (s inboundSide) editTCP(t *tcpproxyv3.TcpProxy) {
	if s.record {
		t.AccessLog = append(t.AccessLog, s.tags().tcpLogger())
	}
}

// inboundServiceHosts maps each container port of pod that Services
// target to the Service's host, or to "unknown" when several Services
// target it (the caller's HeaderDestinationService tells them apart on
// mTLS chains).
func inboundServiceHosts(v *model.View, pod *model.Pod) map[int32]string {
	hosts := map[int32]string{}
	for _, svc := range v.ServicesFor(pod) {
		host := svc.Hostname(v.ClusterDomain())
		for _, sp := range svc.Ports {
			port, ok := pod.TargetPort(sp)
			if !ok {
				continue
			}
			if have, seen := hosts[port]; seen && have != host {
				hosts[port] = es.Unknown
				continue
			}
			hosts[port] = host
		}
	}
	return hosts
}
