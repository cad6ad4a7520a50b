package generator

import (
	"fmt"
	"strconv"
	"strings"
)

// Names shared with the sidecar agent, which writes Envoy's bootstrap
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/bootstrap/v3/bootstrap.proto):
// the generated resources refer to the bootstrap's static clusters and to
// the SDS secrets the agent serves, so both sides must use these constants.
const (
	// XDSClusterName is the bootstrap's static cluster that reaches pilot's
	// ADS server (mTLS with the SDS secrets below).
	XDSClusterName = "xds-grpc"
	// SDSClusterName is the bootstrap's static cluster that reaches the
	// agent's SDS server on SDSSocketPath. Every generated TLS context
	// fetches its secrets through it
	// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/security/secret).
	SDSClusterName = "sds-grpc"
	// SDSSocketPath is the agent's SDS Unix socket inside the pod.
	SDSSocketPath = "/var/run/weft/proxy/sds.sock"
	// SecretDefault is the SDS name of the workload's X.509-SVID and key.
	SecretDefault = "default"
	// SecretRootCA is the SDS name of the mesh trust bundle used to verify
	// peers.
	SecretRootCA = "ROOTCA"
)

// Ports fixed by DESIGN.md. The agent and weft-redirect use the same values.
const (
	// PortOutbound is where iptables REDIRECTs the app's outbound TCP.
	PortOutbound = 15001
	// PortInbound is where iptables REDIRECTs inbound TCP to the pod.
	PortInbound = 15006
	// PortAdmin is Envoy's admin interface, bound to 127.0.0.1 only.
	PortAdmin = 15000
	// PortAgentMetrics is the agent's own metrics and health endpoint.
	PortAgentMetrics = 15020
	// PortReadiness serves ReadinessPath to the kubelet. The agent's
	// bootstrap owns it (see Options.ReadinessListener).
	PortReadiness = 15021
	// PortStats is the Prometheus endpoint. It is a static listener in the
	// agent's bootstrap (not generated here) so stats work before pilot is
	// reachable, which is when they are most needed.
	PortStats = 15090
	// ProxyUID is the UID (and GID) Envoy runs as; iptables exempts it.
	ProxyUID = 1337
	// ReadinessPath is the HTTP path of the readiness probe on PortReadiness.
	ReadinessPath = "/healthz/ready"
)

// Names of generated resources that other parts of the mesh (meshctl, tests,
// dashboards) refer to.
const (
	ListenerOutbound  = "virtualOutbound"
	ListenerInbound   = "virtualInbound"
	ListenerReadiness = "readiness"
	// ClusterPassthrough sends outbound traffic for non-mesh destinations
	// to its original destination, in plaintext.
	ClusterPassthrough = "PassthroughCluster"
	// ClusterInboundPassthrough forwards inbound traffic for ports no
	// Service declares to the original destination (the pod IP).
	ClusterInboundPassthrough = "InboundPassthroughCluster"
	// InboundPassthroughSource is the source address of those forwarded
	// connections; weft-redirect (cni-plugin/redirect) lets connections
	// from it reach the app instead of capturing them again.
	InboundPassthroughSource = "127.0.0.6"
)

// Endpoint metadata that selects the transport socket, as Istio does with
// transport_socket_matches
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/cluster/v3/cluster.proto#envoy-v3-api-field-config-cluster-v3-cluster-transport-socket-matches).
const (
	// TransportSocketMatchKey is the filter metadata namespace Envoy reads.
	TransportSocketMatchKey = "envoy.transport_socket_match"
	// TLSModeKey is the metadata field; an endpoint with TLSModeKey=TLSModeWeft
	// has a sidecar that accepts mTLS, every other endpoint gets plaintext.
	TLSModeKey  = "tlsMode"
	TLSModeWeft = "weft"
	// ALPNWeft is offered by clients in the mesh so the inbound listener can
	// tell mesh mTLS from the application's own TLS.
	ALPNWeft = "weft"
)

// Node metadata keys the agent puts in the bootstrap's node.metadata. Pilot
// does not trust them for identity (the certificate and the model decide);
// they are for debugging and meshctl.
const (
	MetaPodName        = "POD_NAME"
	MetaPodNamespace   = "POD_NAMESPACE"
	MetaPodIP          = "POD_IP"
	MetaServiceAccount = "SERVICE_ACCOUNT"
	MetaLabels         = "LABELS"
)

// NodeID is Envoy's node.id for a pod: "<pod>.<namespace>". Pod names may
// contain dots but namespaces may not, so ParseNodeID splits at the last dot.
func NodeID(namespace, pod string) string { return pod + "." + namespace }

// ParseNodeID splits a NodeID into namespace and pod name.
func ParseNodeID(id string) (namespace, pod string, err error) {
	i := strings.LastIndexByte(id, '.')
	if i <= 0 || i == len(id)-1 {
		return "", "", fmt.Errorf("node id %q is not <pod>.<namespace>", id)
	}
	return id[i+1:], id[:i], nil
}

// OutboundClusterName is Istio's cluster naming,
// outbound|<port>||<hostname>, which operators already know from
// istioctl proxy-config.
func OutboundClusterName(port int32, hostname string) string {
	return "outbound|" + strconv.Itoa(int(port)) + "||" + hostname
}

// InboundClusterName names the cluster that delivers to the app's port on
// localhost: inbound|<port>||.
func InboundClusterName(port int32) string {
	return "inbound|" + strconv.Itoa(int(port)) + "||"
}
