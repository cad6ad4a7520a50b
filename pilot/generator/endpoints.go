package generator

import (
	"maps"
	"net/netip"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weftmesh/weft/pilot/model"
)

// backend is one ready endpoint of a Service port.
type backend struct {
	addr   netip.AddrPort
	zone   string
	meshed bool
}

// backends lists the ready endpoints of a Service port across its
// EndpointSlices, deduplicated (an address may briefly be in two slices)
// and sorted. An endpoint is meshed when its pod has a sidecar and does not
// DISABLE mTLS on that port: only then may a client send mTLS to it.
func backends(v *model.View, svc *model.Service, sp model.ServicePort) []backend {
	seen := map[netip.AddrPort]bool{}
	var out []backend
	for _, es := range v.EndpointSlices(svc.Key()) {
		port, ok := slicePort(es, sp.Name)
		if !ok {
			continue
		}
		for _, ep := range es.Endpoints {
			if !ep.Ready {
				continue
			}
			meshed := false
			if pod, ok := v.EndpointPod(es.Namespace, ep); ok && pod.HasSidecar {
				meshed = v.MTLS(pod).ForPort(port) != model.MTLSDisable
			}
			for _, a := range ep.Addresses {
				ap := netip.AddrPortFrom(a, uint16(port))
				if seen[ap] {
					continue
				}
				seen[ap] = true
				out = append(out, backend{addr: ap, zone: ep.Zone, meshed: meshed})
			}
		}
	}
	slices.SortFunc(out, func(a, b backend) int { return a.addr.Compare(b.addr) })
	return out
}

// slicePort finds the endpoint port that implements the Service port of the
// given name (EndpointSlice ports carry the Service port's name).
func slicePort(es *model.EndpointSlice, name string) (int32, bool) {
	for _, p := range es.Ports {
		if p.Name == name && p.Port != 0 {
			return p.Port, true
		}
	}
	return 0, false
}

// makeLoadAssignment is the EDS resource of an outbound cluster, grouped by
// zone so Envoy can do locality-aware balancing
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/endpoint/v3/endpoint.proto).
func makeLoadAssignment(name string, bs []backend) *endpointv3.ClusterLoadAssignment {
	byZone := map[string]*endpointv3.LocalityLbEndpoints{}
	for _, b := range bs {
		l := byZone[b.zone]
		if l == nil {
			l = &endpointv3.LocalityLbEndpoints{}
			if b.zone != "" {
				l.Locality = &corev3.Locality{Zone: b.zone}
			}
			byZone[b.zone] = l
		}
		var md *corev3.Metadata
		if b.meshed {
			md = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
				TransportSocketMatchKey: tlsModeStruct(),
			}}
		}
		l.LbEndpoints = append(l.LbEndpoints, lbEndpoint(b.addr.Addr().String(), uint32(b.addr.Port()), md))
	}
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: name}
	for _, zone := range slices.Sorted(maps.Keys(byZone)) {
		cla.Endpoints = append(cla.Endpoints, byZone[zone])
	}
	return cla
}

func lbEndpoint(ip string, port uint32, md *corev3.Metadata) *endpointv3.LbEndpoint {
	return &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: socketAddress(ip, port),
		}},
		HealthStatus: corev3.HealthStatus_HEALTHY,
		Metadata:     md,
	}
}

// cidr is a single-address range for filter chain matching.
func cidr(a netip.Addr) *corev3.CidrRange {
	return &corev3.CidrRange{AddressPrefix: a.String(), PrefixLen: wrapperspb.UInt32(uint32(a.BitLen()))}
}
