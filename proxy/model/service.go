package model

import (
	"errors"
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ProxyNameLabel marks Services handled by another proxy; kube-proxy and
// weft-proxy both leave them alone (KEP-2447 service-proxy-name).
const ProxyNameLabel = "service.kubernetes.io/service-proxy-name"

// defaultAffinitySeconds is the API default for ClientIP affinity (3 hours).
const defaultAffinitySeconds = 10800

// Protocols says which protocols this node can program. SCTP needs the
// kernel's sctp match; the iptables edge probes for it at start-up.
type Protocols struct {
	SCTP bool
}

// ServicePorts converts a Service into the ports the proxy programs. It
// returns no ports and no error for Services that need no rules (headless,
// ExternalName, handled by another proxy). Ports the node cannot program —
// an unsupported protocol, an IPv6-only Service, an unparsable source range —
// are left out and reported in the joined error so the caller can log them
// while every other Service and port keeps working.
func ServicePorts(svc *v1.Service, protos Protocols) ([]ServicePort, error) {
	if svc == nil || !needsRules(svc) {
		return nil, nil
	}
	name := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	clusterIP, ok := firstIPv4(svc.Spec.ClusterIPs, svc.Spec.ClusterIP)
	if !ok {
		return nil, fmt.Errorf("service %s: no IPv4 cluster IP in %v: only IPv4 is supported", name, svc.Spec.ClusterIPs)
	}
	var errs []error
	base := ServicePort{ClusterIP: clusterIP}
	base.ExternalIPs, errs = parseIPs(svc.Spec.ExternalIPs, "external IP", errs)
	base.LoadBalancerIPs, errs = loadBalancerIPs(svc, errs)
	ranges, err := parseRanges(svc.Spec.LoadBalancerSourceRanges)
	if err != nil {
		// Ignoring a bad range would open the Service to every source, so the
		// whole Service is skipped instead (fail closed).
		return nil, fmt.Errorf("service %s: %w", name, err)
	}
	base.SourceRanges, base.Firewalled = ranges, len(svc.Spec.LoadBalancerSourceRanges) > 0
	if svc.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
		base.AffinitySeconds = defaultAffinitySeconds
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			base.AffinitySeconds = *c.ClientIP.TimeoutSeconds
		}
	}
	base.InternalLocal = svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal
	hasNodePorts := svc.Spec.Type == v1.ServiceTypeNodePort || svc.Spec.Type == v1.ServiceTypeLoadBalancer
	var ports []ServicePort
	for _, sp := range svc.Spec.Ports {
		p := base
		p.Name = ServicePortName{NamespacedName: name, Port: sp.Name}
		proto, err := protocol(sp.Protocol, protos)
		if err != nil {
			errs = append(errs, fmt.Errorf("service port %s: %w", p.Name, err))
			continue
		}
		if sp.Port < 1 || sp.Port > 65535 || sp.NodePort < 0 || sp.NodePort > 65535 {
			errs = append(errs, fmt.Errorf("service port %s: port %d or node port %d out of range", p.Name, sp.Port, sp.NodePort))
			continue
		}
		p.Protocol, p.Port = proto, uint16(sp.Port)
		if hasNodePorts {
			p.NodePort = uint16(sp.NodePort)
		}
		p.ExternalLocal = svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal && p.ExternallyAccessible()
		if p.ExternalLocal && svc.Spec.Type == v1.ServiceTypeLoadBalancer && svc.Spec.HealthCheckNodePort > 0 && svc.Spec.HealthCheckNodePort <= 65535 {
			p.HealthCheckNodePort = uint16(svc.Spec.HealthCheckNodePort)
		}
		ports = append(ports, p)
	}
	return ports, errors.Join(errs...)
}

// needsRules is false for Services without a virtual IP or owned by another
// proxy.
func needsRules(svc *v1.Service) bool {
	if _, other := svc.Labels[ProxyNameLabel]; other {
		return false
	}
	if svc.Spec.Type == v1.ServiceTypeExternalName {
		return false
	}
	return svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != v1.ClusterIPNone
}

func protocol(p v1.Protocol, protos Protocols) (Protocol, error) {
	switch p {
	case v1.ProtocolTCP, "":
		return TCP, nil
	case v1.ProtocolUDP:
		return UDP, nil
	case v1.ProtocolSCTP:
		if !protos.SCTP {
			return "", errors.New("protocol SCTP is not supported by this node's kernel")
		}
		return SCTP, nil
	}
	return "", fmt.Errorf("unknown protocol %q", p)
}

func firstIPv4(ips []string, fallback string) (netip.Addr, bool) {
	if len(ips) == 0 {
		ips = []string{fallback}
	}
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// parseIPs keeps the IPv4 addresses; IPv6 ones are silently left to a future
// IPv6 proxier, unparsable ones are reported.
func parseIPs(in []string, what string, errs []error) ([]netip.Addr, []error) {
	var out []netip.Addr
	for _, s := range in {
		a, err := netip.ParseAddr(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", what, s, err))
			continue
		}
		if a.Is4() {
			out = append(out, a)
		}
	}
	return out, errs
}

// loadBalancerIPs returns the VIP-mode ingress IPs; "Proxy" mode ingress
// points (KEP-1860) are reached through the load balancer, not captured here.
func loadBalancerIPs(svc *v1.Service, errs []error) ([]netip.Addr, []error) {
	if svc.Spec.Type != v1.ServiceTypeLoadBalancer {
		return nil, errs
	}
	var ips []string
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == "" || (ing.IPMode != nil && *ing.IPMode == v1.LoadBalancerIPModeProxy) {
			continue
		}
		ips = append(ips, ing.IP)
	}
	return parseIPs(ips, "load-balancer IP", errs)
}

func parseRanges(in []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("load-balancer source range %q: %w", s, err)
		}
		if p.Addr().Is4() {
			out = append(out, p.Masked())
		}
	}
	return out, nil
}
