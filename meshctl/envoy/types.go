package envoy

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Listener is a listener with its filter chains.
type Listener struct {
	Name               string        `json:"name"`
	Address            Address       `json:"address"`
	FilterChains       []FilterChain `json:"filter_chains"`
	DefaultFilterChain *FilterChain  `json:"default_filter_chain"`
	TrafficDirection   string        `json:"traffic_direction"`
	// State is StateStatic, StateActive, StateWarming or StateError (then
	// Error holds Envoy's reason).
	State string `json:"-"`
	Error string `json:"-"`
}

// Address is a socket address.
type Address struct {
	SocketAddress struct {
		Address   string `json:"address"`
		PortValue uint32 `json:"port_value"`
	} `json:"socket_address"`
	Pipe *struct {
		Path string `json:"path"`
	} `json:"pipe"`
}

// String is "ip:port" or the pipe path.
func (a Address) String() string {
	if a.Pipe != nil {
		return a.Pipe.Path
	}
	if a.SocketAddress.Address == "" {
		return ""
	}
	return net.JoinHostPort(a.SocketAddress.Address, strconv.Itoa(int(a.SocketAddress.PortValue)))
}

// FilterChain is one filter chain of a listener.
type FilterChain struct {
	Name            string           `json:"name"`
	Match           ChainMatch       `json:"filter_chain_match"`
	Filters         []Filter         `json:"filters"`
	TransportSocket *TransportSocket `json:"transport_socket"`
}

// ChainMatch is a FilterChainMatch.
type ChainMatch struct {
	DestinationPort      *uint32     `json:"destination_port"`
	PrefixRanges         []CidrRange `json:"prefix_ranges"`
	TransportProtocol    string      `json:"transport_protocol"`
	ApplicationProtocols []string    `json:"application_protocols"`
	ServerNames          []string    `json:"server_names"`
}

// CidrRange is an address prefix.
type CidrRange struct {
	AddressPrefix string  `json:"address_prefix"`
	PrefixLen     *uint32 `json:"prefix_len"`
}

// Prefix parses the range.
func (c CidrRange) Prefix() (netip.Prefix, error) {
	a, err := netip.ParseAddr(c.AddressPrefix)
	if err != nil {
		return netip.Prefix{}, err
	}
	bits := 0
	if c.PrefixLen != nil {
		bits = int(*c.PrefixLen)
	}
	return a.Prefix(bits)
}

// String describes the match briefly: "10.96.0.1/32:8000 tls alpn=weft".
func (m ChainMatch) String() string {
	var parts []string
	var addrs []string
	for _, r := range m.PrefixRanges {
		p, err := r.Prefix()
		if err != nil {
			addrs = append(addrs, r.AddressPrefix)
			continue
		}
		if p.IsSingleIP() {
			addrs = append(addrs, p.Addr().String())
		} else {
			addrs = append(addrs, p.String())
		}
	}
	dst := strings.Join(addrs, ",")
	switch {
	case m.DestinationPort != nil && dst == "":
		parts = append(parts, "port "+strconv.Itoa(int(*m.DestinationPort)))
	case m.DestinationPort != nil:
		parts = append(parts, "dst "+dst+":"+strconv.Itoa(int(*m.DestinationPort)))
	case dst != "":
		parts = append(parts, "dst "+dst)
	}
	if m.TransportProtocol != "" {
		parts = append(parts, m.TransportProtocol)
	}
	if len(m.ApplicationProtocols) > 0 {
		parts = append(parts, "alpn="+strings.Join(m.ApplicationProtocols, ","))
	}
	if len(m.ServerNames) > 0 {
		parts = append(parts, "sni="+strings.Join(m.ServerNames, ","))
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
}

// Filter is a network filter with its typed config kept raw.
type Filter struct {
	Name        string          `json:"name"`
	TypedConfig json.RawMessage `json:"typed_config"`
}

// HCM is the part of an HTTP connection manager meshctl reads.
type HCM struct {
	StatPrefix string `json:"stat_prefix"`
	RDS        *struct {
		RouteConfigName string `json:"route_config_name"`
	} `json:"rds"`
	RouteConfig *RouteConfig `json:"route_config"`
	HTTPFilters []struct {
		Name string `json:"name"`
	} `json:"http_filters"`
}

// TCPProxy is the part of a TCP proxy meshctl reads.
type TCPProxy struct {
	StatPrefix       string `json:"stat_prefix"`
	Cluster          string `json:"cluster"`
	WeightedClusters *struct {
		Clusters []WeightedCluster `json:"clusters"`
	} `json:"weighted_clusters"`
}

// WeightedCluster is one cluster of a weighted split.
type WeightedCluster struct {
	Name   string `json:"name"`
	Weight uint32 `json:"weight"`
}

// Filter type names (the typed_config @type suffixes).
const (
	typeHCM      = ".HttpConnectionManager"
	typeTCPProxy = ".TcpProxy"
	typeRBAC     = ".RBAC"
)

func (f Filter) typeURL() string {
	var t struct {
		Type string `json:"@type"`
	}
	if err := json.Unmarshal(f.TypedConfig, &t); err != nil {
		return ""
	}
	return t.Type
}

// HCM decodes an HTTP connection manager filter.
func (f Filter) HCM() (HCM, bool) {
	var h HCM
	if !strings.HasSuffix(f.typeURL(), typeHCM) || json.Unmarshal(f.TypedConfig, &h) != nil {
		return HCM{}, false
	}
	return h, true
}

// TCPProxy decodes a TCP proxy filter.
func (f Filter) TCPProxy() (TCPProxy, bool) {
	var t TCPProxy
	if !strings.HasSuffix(f.typeURL(), typeTCPProxy) || json.Unmarshal(f.TypedConfig, &t) != nil {
		return TCPProxy{}, false
	}
	return t, true
}

// IsRBAC reports a network RBAC filter (authorization).
func (f Filter) IsRBAC() bool { return strings.HasSuffix(f.typeURL(), typeRBAC) }

// Destination says where a filter chain sends traffic: "route <name>",
// "cluster <name>" or the filter's name.
func (fc FilterChain) Destination() string {
	for _, f := range fc.Filters {
		if h, ok := f.HCM(); ok {
			switch {
			case h.RDS != nil:
				return "route " + h.RDS.RouteConfigName
			case h.RouteConfig != nil:
				return "inline route " + h.RouteConfig.Name
			}
		}
		if t, ok := f.TCPProxy(); ok {
			if t.WeightedClusters != nil {
				var names []string
				for _, c := range t.WeightedClusters.Clusters {
					names = append(names, fmt.Sprintf("%s (%d)", c.Name, c.Weight))
				}
				return "clusters " + strings.Join(names, ", ")
			}
			return "cluster " + t.Cluster
		}
	}
	if len(fc.Filters) > 0 {
		return fc.Filters[len(fc.Filters)-1].Name
	}
	return "-"
}

// TransportSocket is a transport socket with its config kept raw.
type TransportSocket struct {
	Name        string          `json:"name"`
	TypedConfig json.RawMessage `json:"typed_config"`
}

// TLSContext is what a TLS transport socket says about mutual TLS.
type TLSContext struct {
	// Upstream is true for a client (UpstreamTlsContext).
	Upstream bool
	SNI      string
	ALPN     []string
	// CertSecret and RootSecret are the SDS secrets of the certificate and
	// the trust bundle; SANs the accepted peer identities ("exact" or
	// "prefix*").
	CertSecret, RootSecret string
	SANs                   []string
	RequireClientCert      bool
}

// TLS decodes a TLS transport socket; ok is false for plaintext.
func (t *TransportSocket) TLS() (TLSContext, bool) {
	if t == nil || !strings.HasSuffix(t.Name, ".tls") && t.Name != "tls" {
		return TLSContext{}, false
	}
	var raw struct {
		Type   string        `json:"@type"`
		Common commonTLSJSON `json:"common_tls_context"`
		SNI    string        `json:"sni"`
		Req    *bool         `json:"require_client_certificate"`
	}
	if err := json.Unmarshal(t.TypedConfig, &raw); err != nil {
		return TLSContext{}, false
	}
	out := TLSContext{Upstream: strings.HasSuffix(raw.Type, "UpstreamTlsContext"), SNI: raw.SNI, ALPN: raw.Common.ALPN,
		RequireClientCert: raw.Req != nil && *raw.Req}
	for _, s := range raw.Common.Certs {
		out.CertSecret = s.Name
	}
	if v := raw.Common.Combined; v != nil {
		out.RootSecret = v.SDS.Name
		for _, m := range v.Default.SANs {
			switch {
			case m.Matcher.Exact != "":
				out.SANs = append(out.SANs, m.Matcher.Exact)
			case m.Matcher.Prefix != "":
				out.SANs = append(out.SANs, m.Matcher.Prefix+"*")
			}
		}
	}
	return out, true
}

type commonTLSJSON struct {
	ALPN  []string `json:"alpn_protocols"`
	Certs []struct {
		Name string `json:"name"`
	} `json:"tls_certificate_sds_secret_configs"`
	Combined *struct {
		Default struct {
			SANs []struct {
				Matcher struct {
					Exact  string `json:"exact"`
					Prefix string `json:"prefix"`
				} `json:"matcher"`
			} `json:"match_typed_subject_alt_names"`
		} `json:"default_validation_context"`
		SDS struct {
			Name string `json:"name"`
		} `json:"validation_context_sds_secret_config"`
	} `json:"combined_validation_context"`
}

// Cluster is an upstream cluster.
type Cluster struct {
	Name             string `json:"name"`
	Type             string `json:"type"`
	LbPolicy         string `json:"lb_policy"`
	EDSClusterConfig *struct {
		ServiceName string `json:"service_name"`
	} `json:"eds_cluster_config"`
	TransportSocket        *TransportSocket `json:"transport_socket"`
	TransportSocketMatches []struct {
		Name            string          `json:"name"`
		Match           map[string]any  `json:"match"`
		TransportSocket TransportSocket `json:"transport_socket"`
	} `json:"transport_socket_matches"`
	LoadAssignment *LoadAssignment `json:"load_assignment"`
	State          string          `json:"-"`
}

// Kind is the discovery type, "STATIC" when unset.
func (c Cluster) Kind() string {
	if c.Type == "" {
		return "STATIC"
	}
	return c.Type
}

// Balancer is the load-balancing policy, "ROUND_ROBIN" when unset.
func (c Cluster) Balancer() string {
	if c.LbPolicy == "" {
		return "ROUND_ROBIN"
	}
	return c.LbPolicy
}

// EDSName is the EDS service name (the cluster name when unset).
func (c Cluster) EDSName() string {
	if c.EDSClusterConfig != nil && c.EDSClusterConfig.ServiceName != "" {
		return c.EDSClusterConfig.ServiceName
	}
	return c.Name
}

// UpstreamTLS says how the cluster secures connections: "mTLS" (always),
// "auto" (mTLS to endpoints whose metadata says so, else plaintext, Weft's
// transport socket matches), or "plaintext"; tls is the mTLS context.
func (c Cluster) UpstreamTLS() (mode string, tls TLSContext) {
	if t, ok := c.TransportSocket.TLS(); ok {
		return "mTLS", t
	}
	for _, m := range c.TransportSocketMatches {
		ts := m.TransportSocket
		if t, ok := ts.TLS(); ok {
			return "auto", t
		}
	}
	return "plaintext", TLSContext{}
}

// RouteConfig is an HTTP route table.
type RouteConfig struct {
	Name         string        `json:"name"`
	VirtualHosts []VirtualHost `json:"virtual_hosts"`
}

// VirtualHost is a set of domains and their routes.
type VirtualHost struct {
	Name    string   `json:"name"`
	Domains []string `json:"domains"`
	Routes  []Route  `json:"routes"`
}

// Route is one route of a virtual host.
type Route struct {
	Name           string       `json:"name"`
	Match          RouteMatch   `json:"match"`
	Route          *RouteAction `json:"route"`
	DirectResponse *struct {
		Status int `json:"status"`
	} `json:"direct_response"`
	Redirect json.RawMessage `json:"redirect"`
}

// RouteMatch is a route's request match.
type RouteMatch struct {
	Prefix              *string `json:"prefix"`
	Path                *string `json:"path"`
	PathSeparatedPrefix *string `json:"path_separated_prefix"`
	SafeRegex           *struct {
		Regex string `json:"regex"`
	} `json:"safe_regex"`
	Headers []struct {
		Name string `json:"name"`
	} `json:"headers"`
	QueryParameters []struct {
		Name string `json:"name"`
	} `json:"query_parameters"`
}

// RouteAction forwards to one cluster or a weighted split.
type RouteAction struct {
	Cluster          string `json:"cluster"`
	ClusterHeader    string `json:"cluster_header"`
	WeightedClusters *struct {
		Clusters []WeightedCluster `json:"clusters"`
	} `json:"weighted_clusters"`
	Timeout string `json:"timeout"`
}

// Clusters lists the action's clusters with weights (a single cluster
// weighs 100).
func (a *RouteAction) Clusters() []WeightedCluster {
	if a == nil {
		return nil
	}
	if a.WeightedClusters != nil {
		return a.WeightedClusters.Clusters
	}
	if a.Cluster != "" {
		return []WeightedCluster{{Name: a.Cluster, Weight: 100}}
	}
	return nil
}

// LoadAssignment is a cluster's endpoints (EDS).
type LoadAssignment struct {
	ClusterName string `json:"cluster_name"`
	Endpoints   []struct {
		Locality *struct {
			Zone string `json:"zone"`
		} `json:"locality"`
		LbEndpoints []LbEndpoint `json:"lb_endpoints"`
	} `json:"endpoints"`
}

// LbEndpoint is one endpoint.
type LbEndpoint struct {
	Endpoint struct {
		Address Address `json:"address"`
	} `json:"endpoint"`
	HealthStatus string `json:"health_status"`
	Metadata     *struct {
		FilterMetadata map[string]map[string]any `json:"filter_metadata"`
	} `json:"metadata"`
}

// Health is the EDS health status, "UNKNOWN" when unset.
func (e LbEndpoint) Health() string {
	if e.HealthStatus == "" {
		return "UNKNOWN"
	}
	return e.HealthStatus
}

// TLSMode is the endpoint's transport socket match value for key (Weft:
// envoy.transport_socket_match/tlsMode = "weft" for meshed endpoints).
func (e LbEndpoint) TLSMode(namespace, key string) string {
	if e.Metadata == nil {
		return ""
	}
	v, _ := e.Metadata.FilterMetadata[namespace][key].(string)
	return v
}

// All lists every endpoint of the assignment in order.
func (la LoadAssignment) All() []LbEndpoint {
	var out []LbEndpoint
	for _, l := range la.Endpoints {
		out = append(out, l.LbEndpoints...)
	}
	return out
}

// Secret is an SDS secret.
type Secret struct {
	Name        string     `json:"name"`
	VersionInfo string     `json:"version_info"`
	LastUpdated string     `json:"last_updated"`
	Secret      SecretBody `json:"secret"`
	State       string     `json:"-"`
}

// SecretBody holds a certificate chain or a trust bundle, PEM (Envoy's
// inline_bytes, base64 in JSON, which encoding/json decodes into []byte).
type SecretBody struct {
	TLSCertificate *struct {
		CertificateChain struct {
			InlineBytes  []byte `json:"inline_bytes"`
			InlineString string `json:"inline_string"`
		} `json:"certificate_chain"`
	} `json:"tls_certificate"`
	ValidationContext *struct {
		TrustedCA struct {
			InlineBytes  []byte `json:"inline_bytes"`
			InlineString string `json:"inline_string"`
		} `json:"trusted_ca"`
	} `json:"validation_context"`
}
