// Package envoystats names what a sidecar's Envoy reports: the workload a
// pod belongs to and the Prometheus labels of its stats on 15090. The
// sidecar agent puts StatsConfig in Envoy's bootstrap (stats tags cannot
// come over xDS) and pilot's generator names resources so the tags find
// what they extract; both import this leaf package so the two sides agree.
//
// Envoy stats are tagged by regular expressions over stat names
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/metrics/v3/stats.proto#config-metrics-v3-tagspecifier).
// Pilot's cluster names follow Istio's outbound|<port>|<subset>|<host> and
// inbound|<port>||, so a request from productpage to reviews reads, on
// productpage's sidecar:
//
//	envoy_cluster_upstream_rq{workload="productpage-v1", workload_namespace="shop",
//	    direction="outbound", destination_service_name="reviews",
//	    destination_service_namespace="shop", destination_port="9080",
//	    envoy_cluster_name="outbound|9080||reviews.shop.svc.cluster.local", envoy_response_code="200"}
//
// and on the reviews sidecar, with direction="inbound" and workload the
// destination. workload/workload_namespace are the reporting sidecar's own
// (Envoy's fixed-value tags apply to every stat, so they cannot be called
// source on one side and destination on the other): with
// direction="outbound" they are the source, with direction="inbound" the
// destination — the convention Linkerd's proxy metrics use.
package envoystats

import (
	"regexp"
	"strings"

	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Label names of Envoy's stats as Prometheus shows them.
const (
	TagWorkload                    = "workload"
	TagWorkloadNamespace           = "workload_namespace"
	TagDirection                   = "direction"
	TagDestinationServiceName      = "destination_service_name"
	TagDestinationServiceNamespace = "destination_service_namespace"
	TagDestinationPort             = "destination_port"
	TagDestinationSubset           = "destination_subset"
	// TagClusterName keeps Envoy's default tag name (Prometheus label
	// envoy_cluster_name) with a regular expression that understands
	// pilot's cluster names.
	TagClusterName = "envoy.cluster_name"
)

// StatsConfig is the bootstrap's stats_config for a sidecar of workload in
// namespace. Envoy's default envoy.cluster_name tag cuts a cluster name at
// its first dot, splitting outbound|9080||reviews.shop.svc.cluster.local in
// two, and a custom tag of the same name does not replace a default one;
// so the defaults are switched off and re-listed by name (a tag specifier
// with a name and no value uses Envoy's default expression), with
// envoy.cluster_name given one that understands pilot's names. Istio's
// bootstrap does the same for the same reason.
func StatsConfig(workload, namespace, clusterDomain string) *metricsv3.StatsConfig {
	if clusterDomain == "" {
		clusterDomain = "cluster.local"
	}
	svc := `\.svc\.` + regexp.QuoteMeta(clusterDomain)
	// Every extractor reads the original stat name. The destination tags
	// remove nothing (empty first group) and take their value from the
	// second group; envoy.cluster_name then removes the whole cluster name.
	tags := []*metricsv3.TagSpecifier{
		fixed(TagWorkload, workload),
		fixed(TagWorkloadNamespace, namespace),
		regex(TagDirection, `^cluster\.()(inbound|outbound)\|`),
		regex(TagDestinationPort, `^cluster\.(?:inbound|outbound)\|()(\d+)\|`),
		regex(TagDestinationSubset, `^cluster\.outbound\|\d+\|()([^|]+)\|`),
		regex(TagDestinationServiceName, `^cluster\.outbound\|\d+\|[^|]*\|()([^.|]+)\.[^.|]+`+svc+`\.`),
		regex(TagDestinationServiceNamespace, `^cluster\.outbound\|\d+\|[^|]*\|[^.|]+\.()([^.|]+)`+svc+`\.`),
		regex(TagClusterName, `^cluster\.((.+?(\..+?`+svc+`)?)\.)`),
	}
	for _, name := range envoyDefaultTags {
		tags = append(tags, &metricsv3.TagSpecifier{TagName: "envoy." + name})
	}
	return &metricsv3.StatsConfig{UseAllDefaultTags: wrapperspb.Bool(false), StatsTags: tags}
}

// envoyDefaultTags are Envoy's default tag names (envoy.<name>) other than
// cluster_name, from source/common/stats/well_known_names.h of Envoy 1.37.
var envoyDefaultTags = []string{
	"listener_address", "http_conn_manager_prefix", "http_user_agent",
	"ssl_cipher", "ssl_curve", "ssl_sigalg", "ssl_version", "clientssl_prefix",
	"mongo_prefix", "mongo_cmd", "mongo_collection", "mongo_callsite",
	"ratelimit_prefix", "local_http_ratelimit_prefix", "local_network_ratelimit_prefix",
	"local_listener_ratelimit_prefix", "dns_filter_prefix", "connection_limit_prefix",
	"rbac_prefix", "rbac_http_prefix", "rbac_policy_name", "tcp_prefix", "udp_prefix",
	"fault_downstream_cluster", "dynamo_operation", "dynamo_table", "dynamo_partition_id",
	"grpc_bridge_service", "grpc_bridge_method", "virtual_host", "virtual_cluster",
	"response_code", "response_code_class", "rds_route_config", "scoped_rds_config", "route",
	"ext_authz_prefix", "worker_id", "thrift_prefix", "redis_prefix",
	"proxy_protocol_version", "proxy_protocol_prefix", "google_grpc_client_prefix",
	"tls_certificate", "xds_resource_name",
}

func fixed(name, value string) *metricsv3.TagSpecifier {
	return &metricsv3.TagSpecifier{TagName: name, TagValue: &metricsv3.TagSpecifier_FixedValue{FixedValue: value}}
}

func regex(name, re string) *metricsv3.TagSpecifier {
	return &metricsv3.TagSpecifier{TagName: name, TagValue: &metricsv3.TagSpecifier_Regex{Regex: re}}
}

// suffix is the alphabet of Kubernetes' generated name suffixes
// (k8s.io/apimachinery/pkg/util/rand.SafeEncodeString): no vowels, no
// look-alikes.
const suffix = `[bcdfghjklmnpqrstvwxz2456789]`

var (
	deploymentPod = regexp.MustCompile(`^(.+)-` + suffix + `{1,10}-` + suffix + `{5}$`)
	generatedPod  = regexp.MustCompile(`^(.+)-` + suffix + `{5}$`)
	statefulPod   = regexp.MustCompile(`^(.+)-\d+$`)
)

// WorkloadName is the workload a pod belongs to, derived from its name
// alone so the agent (which knows only POD_NAME) and pilot agree:
// <deployment>-<replicaset hash>-<suffix> → <deployment>,
// <daemonset or job>-<suffix> → <name>, <statefulset>-<ordinal> →
// <statefulset>, anything else → the pod name.
func WorkloadName(pod string) string {
	for _, re := range []*regexp.Regexp{deploymentPod, generatedPod, statefulPod} {
		if m := re.FindStringSubmatch(pod); m != nil && !strings.HasSuffix(m[1], "-") {
			return m[1]
		}
	}
	return pod
}
