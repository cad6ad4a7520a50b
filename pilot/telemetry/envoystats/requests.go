package envoystats

// Request metrics: Istio's standard metrics
// (https://istio.io/latest/docs/reference/config/metrics/) with Istio's
// label names, recorded per request by Envoy's stats access logger
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/extensions/access_loggers/stats/v3/stats.proto)
// that pilot's generator puts on the HTTP connection managers and TCP
// proxies of every sidecar's inbound listener. Unlike the stats tagged by
// StatsConfig, every sample names both ends: the server's sidecar records
// them (reporter="destination") and learns the client's workload from
// request headers the client's sidecar sets (see
// pilot/generator/requestmetrics.go). The client's side of a request is
// in the cluster stats StatsConfig tags. This file names what the
// generator writes and what readers (meshctl dashboard, tests) look for,
// so both agree.

// RequestStatPrefix is the stats access logger's stat_prefix. Envoy's
// Prometheus output prepends "envoy_", so MetricRequests is scraped as
// envoy_weft_requests_total (PrometheusName).
const RequestStatPrefix = "weft"

// Metric names under RequestStatPrefix. Counters carry their _total in the
// name (Envoy's Prometheus output adds nothing to counters); histograms get
// _bucket, _sum and _count.
const (
	// MetricRequests counts HTTP requests (and gRPC calls).
	MetricRequests = "requests_total"
	// MetricRequestDuration is the time from the first byte of the
	// request to the last of the response (Envoy's %DURATION%), in ms.
	MetricRequestDuration = "request_duration_milliseconds"
	// MetricRequestBytes and MetricResponseBytes are body sizes
	// (%BYTES_RECEIVED% and %BYTES_SENT% of the reporting sidecar's
	// downstream side), as in Istio.
	MetricRequestBytes  = "request_bytes"
	MetricResponseBytes = "response_bytes"
	// MetricTCPConnectionsClosed counts TCP proxy connections when they
	// close (the logger runs at the end of a connection).
	MetricTCPConnectionsClosed = "tcp_connections_closed_total"
	// MetricTCPSentBytes and MetricTCPReceivedBytes add a closed
	// connection's bytes to and from the downstream side.
	MetricTCPSentBytes     = "tcp_sent_bytes_total"
	MetricTCPReceivedBytes = "tcp_received_bytes_total"
)

// PrometheusName is a request metric's name on /stats/prometheus.
func PrometheusName(metric string) string { return "envoy_" + RequestStatPrefix + "_" + metric }

// Labels of the request metrics, Istio's names. The per-sidecar labels of
// StatsConfig relate to them as: workload/workload_namespace of an inbound
// stat = destination_workload/destination_workload_namespace; of an
// outbound stat (the client's sidecar) = source_workload/
// source_workload_namespace; destination_service_name
// .destination_service_namespace.svc.<domain> of an outbound stat =
// destination_service.
const (
	TagReporter                     = "reporter"
	TagSourceWorkload               = "source_workload"
	TagSourceWorkloadNamespace      = "source_workload_namespace"
	TagSourcePrincipal              = "source_principal"
	TagDestinationWorkload          = "destination_workload"
	TagDestinationWorkloadNamespace = "destination_workload_namespace"
	TagDestinationService           = "destination_service"
	TagResponseCode                 = "response_code"
	TagRequestProtocol              = "request_protocol"
	TagConnectionSecurityPolicy     = "connection_security_policy"
)

// Label values.
const (
	// ReporterDestination: reported by the server's sidecar (inbound),
	// the only reporter. Istio also has "source" (the client's sidecar);
	// Weft keeps the label so that queries written for Istio that select
	// reporter="destination" work unchanged.
	ReporterDestination = "destination"
	// Unknown stands for every value a sidecar cannot know or does not
	// trust, so labels stay bounded and never empty.
	Unknown = "unknown"
	// SecurityMutualTLS and SecurityNone are connection_security_policy:
	// whether the caller proved a mesh identity.
	SecurityMutualTLS = "mutual_tls"
	SecurityNone      = "none"
	// ProtocolTCP is request_protocol of TCP proxy connections; HTTP
	// requests carry Envoy's %PROTOCOL% (HTTP/1.1, HTTP/2, HTTP/3).
	ProtocolTCP = "tcp"
)

// Environment the sidecar agent gives Envoy, read by the outbound config
// with %ENVIRONMENT(...)% (the request headers that name the client): the
// outbound half of the config is shared by every proxy of a namespace, so
// per-proxy values cannot be written into it.
const (
	// EnvWorkloadName is WorkloadName of the pod.
	EnvWorkloadName = "WEFT_WORKLOAD_NAME"
	// EnvWorkloadNamespace is the pod's namespace.
	EnvWorkloadNamespace = "WEFT_WORKLOAD_NAMESPACE"
	// EnvWorkloadPrincipal is the pod's SPIFFE ID
	// (spiffe://<trust-domain>/ns/<ns>/sa/<sa>). The agent sets it; no
	// generated config reads it since only the server's sidecar records
	// (which takes the principal from the peer certificate).
	EnvWorkloadPrincipal = "WEFT_WORKLOAD_PRINCIPAL"
)
