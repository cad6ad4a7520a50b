package model

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftmesh/weft/api/v1alpha1"
)

// ServiceFromK8s converts a Service. ok is false for Services the mesh does
// not route (ExternalName), which callers treat as absent.
func ServiceFromK8s(s *corev1.Service) (svc *Service, ok bool) {
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, false
	}
	out := &Service{
		Namespace: s.Namespace,
		Name:      s.Name,
		Headless:  s.Spec.ClusterIP == corev1.ClusterIPNone,
		Selector:  s.Spec.Selector,
		ExportTo:  parseExportTo(s.Annotations[AnnotationExportTo]),
		Created:   s.CreationTimestamp.Time,
	}
	if !out.Headless {
		ips := s.Spec.ClusterIPs
		if len(ips) == 0 && s.Spec.ClusterIP != "" {
			ips = []string{s.Spec.ClusterIP}
		}
		for _, ip := range ips {
			if a, err := netip.ParseAddr(ip); err == nil {
				out.ClusterIPs = append(out.ClusterIPs, a.Unmap())
			}
		}
	}
	for _, p := range s.Spec.Ports {
		sp := ServicePort{Name: p.Name, Port: p.Port, Protocol: string(p.Protocol)}
		if p.AppProtocol != nil {
			sp.AppProtocol = *p.AppProtocol
		}
		switch {
		case p.TargetPort.Type == intstr.String && p.TargetPort.StrVal != "":
			sp.TargetPortName = p.TargetPort.StrVal
		case p.TargetPort.IntVal != 0:
			sp.TargetPort = p.TargetPort.IntVal
		default:
			sp.TargetPort = p.Port
		}
		out.Ports = append(out.Ports, sp)
	}
	return out, true
}

func parseExportTo(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// EndpointSliceFromK8s converts an EndpointSlice. ok is false for slices
// without an owning Service or with FQDN addresses, which the mesh ignores.
func EndpointSliceFromK8s(es *discoveryv1.EndpointSlice) (slice *EndpointSlice, ok bool) {
	svc := es.Labels[discoveryv1.LabelServiceName]
	if svc == "" || es.AddressType == discoveryv1.AddressTypeFQDN {
		return nil, false
	}
	out := &EndpointSlice{Namespace: es.Namespace, Name: es.Name, Service: svc,
		UID: string(es.UID), ResourceVersion: es.ResourceVersion}
	if v, ok := es.Annotations[corev1.EndpointsLastChangeTriggerTime]; ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			out.TriggerTime = t
		}
	}
	for _, p := range es.Ports {
		ep := EndpointPort{}
		if p.Name != nil {
			ep.Name = *p.Name
		}
		if p.Port != nil {
			ep.Port = *p.Port
		}
		if p.Protocol != nil {
			ep.Protocol = string(*p.Protocol)
		}
		if p.AppProtocol != nil {
			ep.AppProtocol = *p.AppProtocol
		}
		out.Ports = append(out.Ports, ep)
	}
	for _, e := range es.Endpoints {
		ep := Endpoint{
			Ready:       e.Conditions.Ready == nil || *e.Conditions.Ready,
			Serving:     e.Conditions.Serving == nil || *e.Conditions.Serving,
			Terminating: e.Conditions.Terminating != nil && *e.Conditions.Terminating,
		}
		if e.NodeName != nil {
			ep.NodeName = *e.NodeName
		}
		if e.Zone != nil {
			ep.Zone = *e.Zone
		}
		if e.TargetRef != nil && e.TargetRef.Kind == "Pod" {
			ep.Pod = e.TargetRef.Name
		}
		for _, a := range e.Addresses {
			if ip, err := netip.ParseAddr(a); err == nil {
				ep.Addresses = append(ep.Addresses, ip.Unmap())
			}
		}
		out.Endpoints = append(out.Endpoints, ep)
	}
	return out, true
}

// PodFromK8s converts a Pod. ok is false for pods that have finished
// (Succeeded/Failed), whose IPs may already belong to another pod.
func PodFromK8s(p *corev1.Pod) (pod *Pod, ok bool) {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil, false
	}
	_, sidecar := p.Annotations[AnnotationSidecarStatus]
	out := &Pod{
		Namespace:      p.Namespace,
		Name:           p.Name,
		UID:            string(p.UID),
		Labels:         p.Labels,
		NodeName:       p.Spec.NodeName,
		ServiceAccount: p.Spec.ServiceAccountName,
		HasSidecar:     sidecar,
		Created:        p.CreationTimestamp.Time,
	}
	if out.ServiceAccount == "" {
		out.ServiceAccount = "default"
	}
	// Host-network pods share the node's address; indexing it would make
	// every endpoint on that node look like this pod.
	if !p.Spec.HostNetwork {
		for _, ip := range p.Status.PodIPs {
			if a, err := netip.ParseAddr(ip.IP); err == nil {
				out.IPs = append(out.IPs, a.Unmap())
			}
		}
		if len(out.IPs) == 0 && p.Status.PodIP != "" {
			if a, err := netip.ParseAddr(p.Status.PodIP); err == nil {
				out.IPs = append(out.IPs, a.Unmap())
			}
		}
	}
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		for _, cp := range c.Ports {
			if cp.Name == "" {
				continue
			}
			if out.ContainerPorts == nil {
				out.ContainerPorts = map[string]int32{}
			}
			out.ContainerPorts[cp.Name] = cp.ContainerPort
		}
	}
	return out, true
}

// TLSPolicyFromMeshTLS converts a MeshTLS. The API server's CEL rules should
// have rejected anything invalid; an error here means the CRD in the cluster
// is older than pilot, and the policy is ignored.
func TLSPolicyFromMeshTLS(m *v1alpha1.MeshTLS) (*TLSPolicy, error) {
	out := &TLSPolicy{
		Namespace: m.Namespace,
		Name:      m.Name,
		Mode:      MTLSMode(m.Spec.Mode),
		Created:   m.CreationTimestamp.Time,
	}
	if err := checkMode(out.Mode); err != nil {
		return nil, fmt.Errorf("meshtls %s/%s: %w", m.Namespace, m.Name, err)
	}
	if m.Spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(m.Spec.Selector)
		if err != nil {
			return nil, fmt.Errorf("meshtls %s/%s selector: %w", m.Namespace, m.Name, err)
		}
		out.Selector = sel
	}
	for k, mode := range m.Spec.PortLevelMTLS {
		port, err := strconv.ParseUint(k, 10, 16)
		if err != nil || port == 0 {
			return nil, fmt.Errorf("meshtls %s/%s: port %q is not a port number", m.Namespace, m.Name, k)
		}
		if err := checkMode(MTLSMode(mode)); err != nil {
			return nil, fmt.Errorf("meshtls %s/%s port %d: %w", m.Namespace, m.Name, port, err)
		}
		if out.PortModes == nil {
			out.PortModes = map[int32]MTLSMode{}
		}
		out.PortModes[int32(port)] = MTLSMode(mode)
	}
	return out, nil
}

func checkMode(m MTLSMode) error {
	switch m {
	case MTLSUnset, MTLSStrict, MTLSPermissive, MTLSDisable:
		return nil
	}
	return fmt.Errorf("unknown mTLS mode %q", m)
}
