package model

import (
	"net/netip"
	"strings"
	"time"
)

// DefaultClusterDomain is the Kubernetes cluster DNS domain a Service's
// hostname is built from, <name>.<namespace>.svc.<domain>.
const DefaultClusterDomain = "cluster.local"

// Key names a namespaced object, as client-go's cache keys do.
type Key struct {
	Namespace string
	Name      string
}

// String is the object's "namespace/name" form used in logs.
func (k Key) String() string { return k.Namespace + "/" + k.Name }

// Service is the part of a Kubernetes Service the mesh routes by: its
// virtual IPs, ports, selector and visibility.
type Service struct {
	Namespace string
	Name      string
	// ClusterIPs are the virtual IPs (one per IP family); empty when the
	// Service is headless, in which case clients dial pod IPs directly.
	ClusterIPs []netip.Addr
	// Headless is true for clusterIP: None Services.
	Headless bool
	Ports    []ServicePort
	// Selector picks the pods backing the Service; nil for Services whose
	// endpoints are managed by hand.
	Selector map[string]string
	// ExportTo lists the namespaces that may see the Service ("*", "." or
	// names); nil means everywhere.
	ExportTo []string
	Created  time.Time
}

// Key is the Service's namespace/name.
func (s *Service) Key() Key { return Key{Namespace: s.Namespace, Name: s.Name} }

// Hostname is the Service's fully qualified DNS name,
// <name>.<namespace>.svc.<domain>, which Istio also uses as the host in
// cluster names.
func (s *Service) Hostname(domain string) string {
	if domain == "" {
		domain = DefaultClusterDomain
	}
	return s.Name + "." + s.Namespace + ".svc." + domain
}

// VisibleTo reports whether proxies in namespace ns may receive config for
// the Service, following its exportTo list.
func (s *Service) VisibleTo(ns string) bool {
	if len(s.ExportTo) == 0 {
		return true
	}
	for _, e := range s.ExportTo {
		switch e {
		case ExportAll, ns:
			return true
		case ExportSelf:
			if s.Namespace == ns {
				return true
			}
		}
	}
	return false
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name string
	Port int32
	// TargetPort is the numeric target port; zero when the Service names a
	// container port instead (TargetPortName).
	TargetPort     int32
	TargetPortName string
	// Protocol is the L4 protocol: "TCP", "UDP" or "SCTP".
	Protocol string
	// AppProtocol is the Kubernetes appProtocol field, if set.
	AppProtocol string
}

// Protocol is what the mesh knows about the application protocol of a port,
// which decides between an HTTP connection manager and a TCP proxy.
type Protocol string

const (
	// ProtocolTCP is opaque TCP: proxied byte for byte.
	ProtocolTCP Protocol = "TCP"
	// ProtocolHTTP is HTTP/1.1 (or HTTP/2 if the client speaks it).
	ProtocolHTTP Protocol = "HTTP"
	// ProtocolHTTP2 is HTTP/2 end to end, including gRPC.
	ProtocolHTTP2 Protocol = "HTTP2"
	// ProtocolUnsupported is a non-TCP port (UDP, SCTP) the sidecar does not
	// proxy.
	ProtocolUnsupported Protocol = "UNSUPPORTED"
)

// IsHTTP reports whether the port gets HTTP routing.
func (p Protocol) IsHTTP() bool { return p == ProtocolHTTP || p == ProtocolHTTP2 }

// Classify returns the port's application protocol the way Istio's protocol selection does
// (https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/):
// appProtocol wins when set, otherwise a port name of http*/grpc* (the
// prefix before "-") marks HTTP; https (the app's own TLS) and everything
// else is opaque TCP.
func (p ServicePort) Classify() Protocol {
	if p.Protocol != "" && !strings.EqualFold(p.Protocol, "TCP") {
		return ProtocolUnsupported
	}
	if p.AppProtocol != "" {
		return classify(p.AppProtocol)
	}
	name := strings.ToLower(p.Name)
	if i := strings.IndexByte(name, '-'); i >= 0 {
		name = name[:i]
	}
	switch {
	case strings.HasPrefix(name, "https"):
		return ProtocolTCP // the app's own TLS: only opaque TCP can carry it
	case strings.HasPrefix(name, "grpc"), strings.HasPrefix(name, "http2"), name == "h2c":
		return ProtocolHTTP2
	case strings.HasPrefix(name, "http"):
		return ProtocolHTTP
	}
	return ProtocolTCP
}

func classify(appProtocol string) Protocol {
	switch a := strings.ToLower(appProtocol); {
	case strings.HasPrefix(a, "https"), a == "kubernetes.io/wss":
		return ProtocolTCP
	case a == "kubernetes.io/h2c", a == "h2c", strings.HasPrefix(a, "grpc"), strings.HasPrefix(a, "http2"):
		return ProtocolHTTP2
	case a == "kubernetes.io/ws", strings.HasPrefix(a, "http"):
		return ProtocolHTTP
	}
	return ProtocolTCP
}

// EndpointSlice is the part of a discovery.k8s.io/v1 EndpointSlice that
// carries routable addresses for one Service.
type EndpointSlice struct {
	Namespace string
	Name      string
	// Service is the name of the owning Service (label
	// kubernetes.io/service-name).
	Service   string
	Ports     []EndpointPort
	Endpoints []Endpoint
	// UID, ResourceVersion and TriggerTime (annotation
	// endpoints.kubernetes.io/last-change-trigger-time, zero if absent)
	// identify this version of the slice for network-programming traces
	// (pilot/telemetry/netprog); config generation ignores them.
	UID             string
	ResourceVersion string
	TriggerTime     time.Time
}

// Key is the slice's namespace/name.
func (e *EndpointSlice) Key() Key { return Key{Namespace: e.Namespace, Name: e.Name} }

// ServiceKey is the namespace/name of the Service the slice belongs to.
func (e *EndpointSlice) ServiceKey() Key { return Key{Namespace: e.Namespace, Name: e.Service} }

// EndpointPort maps a Service port name to the port the endpoints listen on.
type EndpointPort struct {
	Name        string
	Port        int32
	Protocol    string
	AppProtocol string
}

// Endpoint is one backend of a Service.
type Endpoint struct {
	Addresses []netip.Addr
	// Ready follows EndpointConditions.ready (nil counts as ready, as the
	// API says).
	Ready       bool
	Serving     bool
	Terminating bool
	NodeName    string
	Zone        string
	// Pod is the name of the backing pod in the slice's namespace, from
	// targetRef; empty for endpoints that are not pods.
	Pod string
}

// Pod is what the mesh needs to know about a pod: who it is (service
// account), where it is (IPs, node), what selects it (labels) and whether it
// runs a sidecar.
type Pod struct {
	Namespace      string
	Name           string
	UID            string
	IPs            []netip.Addr
	Labels         map[string]string
	NodeName       string
	ServiceAccount string
	// HasSidecar is true when the injector marked the pod
	// (AnnotationSidecarStatus): only such pods terminate mesh mTLS.
	HasSidecar bool
	// ContainerPorts maps named container ports to numbers, to resolve a
	// Service's named targetPort.
	ContainerPorts map[string]int32
	Created        time.Time
}

// Key is the pod's namespace/name.
func (p *Pod) Key() Key { return Key{Namespace: p.Namespace, Name: p.Name} }

// TargetPort resolves a Service port to the container port on this pod; ok
// is false when the port is named and the pod has no such container port.
func (p *Pod) TargetPort(sp ServicePort) (int32, bool) {
	if sp.TargetPortName == "" {
		if sp.TargetPort != 0 {
			return sp.TargetPort, true
		}
		return sp.Port, true
	}
	port, ok := p.ContainerPorts[sp.TargetPortName]
	return port, ok
}
