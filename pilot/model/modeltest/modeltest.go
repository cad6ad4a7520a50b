// Package modeltest builds model objects for tests and benchmarks with
// little ceremony, so scenarios read like the cluster they describe.
package modeltest

import (
	"net/netip"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/weftmesh/weft/pilot/model"
)

// Epoch is the creation time of objects built here; policies that must be
// older or newer than each other set Created explicitly.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Pod is a running pod with one IP, labels app=<app> and optionally a
// sidecar.
func Pod(ns, name, sa, ip, app string, sidecar bool) *model.Pod {
	return &model.Pod{
		Namespace:      ns,
		Name:           name,
		UID:            ns + "-" + name,
		IPs:            []netip.Addr{netip.MustParseAddr(ip)},
		Labels:         map[string]string{"app": app},
		NodeName:       "node-1",
		ServiceAccount: sa,
		HasSidecar:     sidecar,
		Created:        Epoch,
	}
}

// Service is a ClusterIP Service selecting app=<app>; ip "None" makes it
// headless.
func Service(ns, name, ip, app string, ports ...model.ServicePort) *model.Service {
	s := &model.Service{
		Namespace: ns,
		Name:      name,
		Ports:     ports,
		Selector:  map[string]string{"app": app},
		Created:   Epoch,
	}
	if ip == "None" {
		s.Headless = true
	} else {
		s.ClusterIPs = []netip.Addr{netip.MustParseAddr(ip)}
	}
	return s
}

// Port is a TCP Service port with a numeric target port.
func Port(name string, port, target int32) model.ServicePort {
	return model.ServicePort{Name: name, Port: port, TargetPort: target, Protocol: "TCP"}
}

// Slice is the EndpointSlice the endpoint controller would write for svc
// and pods: one ready endpoint per pod, one endpoint port per Service port
// (named target ports resolved on the first pod).
func Slice(svc *model.Service, pods ...*model.Pod) *model.EndpointSlice {
	es := &model.EndpointSlice{Namespace: svc.Namespace, Name: svc.Name + "-abc", Service: svc.Name}
	for _, sp := range svc.Ports {
		port := sp.TargetPort
		if sp.TargetPortName != "" && len(pods) > 0 {
			port = pods[0].ContainerPorts[sp.TargetPortName]
		}
		es.Ports = append(es.Ports, model.EndpointPort{Name: sp.Name, Port: port, Protocol: sp.Protocol})
	}
	for _, p := range pods {
		es.Endpoints = append(es.Endpoints, model.Endpoint{
			Addresses: p.IPs,
			Ready:     true,
			Serving:   true,
			NodeName:  p.NodeName,
			Zone:      "zone-a",
			Pod:       p.Name,
		})
	}
	return es
}

// Policy is a MeshTLS policy; a nil selector makes it namespace- (or
// mesh-) wide.
func Policy(ns, name string, selector map[string]string, mode model.MTLSMode, ports map[int32]model.MTLSMode) *model.TLSPolicy {
	p := &model.TLSPolicy{Namespace: ns, Name: name, Mode: mode, PortModes: ports, Created: Epoch}
	if selector != nil {
		p.Selector = labels.SelectorFromSet(selector)
	}
	return p
}
