package explain

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/weftmesh/weft/meshctl/envoy"
	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
	corev1 "k8s.io/api/core/v1"
)

// path is how the request leaves the source: which endpoints it can
// reach and whether it is mutual TLS to each.
type path struct {
	// targets are the addresses the request may be sent to, with the
	// transport on the wire.
	targets []target
	// viaProxy is set when the request bypasses Envoy and the node's
	// Service proxy picks the endpoint.
	viaProxy bool
}

type target struct {
	addr      netip.AddrPort
	mtls      bool
	peerIDs   []string
	cluster   string
	endpoints *Endpoint // the Kubernetes endpoint, when known
}

// Evaluate walks the request through the facts.
func Evaluate(f Facts) Explanation {
	e := &Explanation{Source: f.Source.Pod.Namespace + "/" + f.Source.Pod.Name, Destination: destName(f)}
	srcID := sourceStep(e, f)
	proto := destinationStep(e, f)
	if v, ok := endpointsStep(e, f); !ok {
		return e.finish(v, e.Steps[len(e.Steps)-1].Summary)
	}
	captured := captureStep(e, f)
	var p path
	if captured {
		var v Verdict
		var ok bool
		if p, v, ok = envoyPath(e, f, proto); !ok {
			return e.finish(v, e.Steps[len(e.Steps)-1].Summary)
		}
	} else {
		p = proxyPath(f)
	}
	return inboundSteps(e, f, p, srcID, proto)
}

func destName(f Facts) string {
	port := strconv.Itoa(int(f.Dest.PortNumber))
	if s := f.Dest.Service; s != nil {
		return s.Name + "." + s.Namespace + ":" + port
	}
	if p := f.Dest.Pod; p != nil {
		return "pod/" + p.Name + "." + p.Namespace + ":" + port
	}
	return "?"
}

// sourceStep describes the client and returns its SPIFFE ID (empty
// without a sidecar).
func sourceStep(e *Explanation, f Facts) string {
	p := f.Source.Pod
	where := fmt.Sprintf("pod %s/%s on %s (%s)", p.Namespace, p.Name, orDash(p.Spec.NodeName), orDash(p.Status.PodIP))
	if f.Source.Sidecar == nil {
		e.add("Source", Info, where+", no sidecar: it sends plaintext and has no mesh identity")
		return ""
	}
	id := identity(f)
	details := []string{"sidecar " + f.Source.Sidecar.Image}
	if f.Source.EnvoyErr != "" {
		details = append(details, "its Envoy config could not be read ("+f.Source.EnvoyErr+"): the listener, route and cluster below are inferred from pilot's naming")
	}
	o := OK
	if p.Status.Phase != corev1.PodRunning {
		o = Warn
		details = append(details, "pod is "+string(p.Status.Phase))
	}
	e.add("Source", o, where+", identity "+id, details...)
	return id
}

// identity is the SVID's SPIFFE ID from the sidecar's secrets, else the
// one pilot's CA issues for the pod's service account.
func identity(f Facts) string {
	if d := f.Source.Envoy; d != nil {
		for _, s := range d.Secrets {
			if s.Name != generator.SecretDefault {
				continue
			}
			if certs, err := s.Certificates(); err == nil && len(certs) > 0 {
				for _, u := range certs[0].URIs {
					if u.Scheme == "spiffe" {
						return u.String()
					}
				}
			}
		}
	}
	sa := f.Source.Pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", f.TrustDomain, f.Source.Pod.Namespace, sa)
}

// destinationStep describes the target and classifies its protocol.
func destinationStep(e *Explanation, f Facts) model.Protocol {
	if p := f.Dest.Pod; p != nil {
		e.add("Destination", Info, fmt.Sprintf("pod %s/%s at %s:%d, addressed directly (no Service: no load balancing, opaque TCP)", p.Namespace, p.Name, f.Dest.IP, f.Dest.PortNumber))
		return model.ProtocolTCP
	}
	svc, sp := f.Dest.Service, f.Dest.Port
	msvc, _ := model.ServiceFromK8s(svc)
	var mp model.ServicePort
	for _, x := range msvc.Ports {
		if x.Port == sp.Port && x.Name == sp.Name {
			mp = x
		}
	}
	proto := mp.Classify()
	why := "port name " + strconvQuote(sp.Name)
	if sp.AppProtocol != nil {
		why = "appProtocol " + *sp.AppProtocol
	}
	vip := "ClusterIP " + svc.Spec.ClusterIP
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		vip = "headless (clients dial pod IPs)"
	}
	o := OK
	var details []string
	switch {
	case proto == model.ProtocolUnsupported:
		o = Warn
		details = append(details, "the sidecar only proxies TCP: "+string(sp.Protocol)+" is not captured")
	case proto == model.ProtocolTCP && sp.AppProtocol == nil && !strings.HasPrefix(sp.Name, "tcp") && !strings.HasPrefix(sp.Name, "https") && !strings.HasPrefix(sp.Name, "tls"):
		details = append(details, "no protocol declared: treated as opaque TCP (name the port http-… or set appProtocol for HTTP routing)")
	}
	e.add("Destination", o, fmt.Sprintf("Service %s/%s, %s, port %s/%s → target port %s, %s (%s)",
		svc.Namespace, svc.Name, vip, portLabel(*sp), sp.Protocol, sp.TargetPort.String(), proto, why), details...)
	return proto
}

func strconvQuote(s string) string {
	if s == "" {
		return `""`
	}
	return strconv.Quote(s)
}

// endpointsStep lists the Kubernetes endpoints; ok is false when none is
// ready, which decides the verdict.
func endpointsStep(e *Explanation, f Facts) (Verdict, bool) {
	var ready, notReady []string
	for _, ep := range f.Endpoints {
		d := endpointLabel(ep)
		if ep.Ready {
			ready = append(ready, d)
		} else {
			notReady = append(notReady, d)
		}
	}
	var details []string
	for _, r := range ready {
		details = append(details, "ready     "+r)
	}
	for _, r := range notReady {
		details = append(details, "not ready "+r)
	}
	if len(ready) == 0 {
		what := "no ready endpoint: the Service proxy rejects the connection and Envoy answers 503 (no healthy upstream)"
		if f.Dest.Pod != nil {
			what = "the pod is not ready"
			if f.Dest.Pod.Status.Phase == corev1.PodRunning {
				e.add("Endpoints", Warn, what+" (addressed directly, so the connection may still work)", details...)
				return "", true
			}
		}
		e.add("Endpoints", Fail, what, details...)
		return Fails, false
	}
	e.add("Endpoints", OK, plural(len(ready), "ready endpoint", "ready endpoints"), details...)
	return "", true
}

func endpointLabel(ep Endpoint) string {
	d := netip.AddrPortFrom(ep.IP, uint16(ep.Port)).String()
	if ep.Pod == nil {
		return d + " (not a pod)"
	}
	side := "no sidecar"
	if hasSidecar(ep.Pod) {
		side = "sidecar"
	}
	return fmt.Sprintf("%s pod %s on %s, %s", d, ep.Pod.Name, orDash(ep.Pod.Spec.NodeName), side)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// captureStep says whether the source's iptables hand the connection to
// its Envoy.
func captureStep(e *Explanation, f Facts) bool {
	st := f.Source.Sidecar
	dst := fmt.Sprintf("%s:%d", f.Dest.IP, f.Dest.PortNumber)
	if st == nil {
		e.add("Capture", Info, "not captured: the source has no sidecar, its connection to "+dst+" leaves the pod as is")
		return false
	}
	if sp := f.Dest.Port; sp != nil && sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
		e.add("Capture", Warn, "not captured: only TCP is redirected, this port is "+string(sp.Protocol))
		return false
	}
	if slices.Contains(st.ExcludeOutboundPorts, uint16(f.Dest.PortNumber)) {
		e.add("Capture", Warn, fmt.Sprintf("not captured: port %d is excluded by traffic.weft.dev/exclude-outbound-ports, the connection bypasses Envoy in plaintext", f.Dest.PortNumber))
		return false
	}
	for _, c := range st.ExcludeOutboundCIDRs {
		if c.Contains(f.Dest.IP) {
			e.add("Capture", Warn, fmt.Sprintf("not captured: %s is in excluded range %s (traffic.weft.dev/exclude-outbound-ip-ranges)", f.Dest.IP, c))
			return false
		}
	}
	if f.Source.RedirectMissing != "" {
		e.add("Capture", Fail, "NOT captured: weft-cni-node found the pod's redirect rules missing, its traffic bypasses the sidecar",
			f.Source.RedirectMissing, "fix: delete the pod so it restarts with the rules")
		return false
	}
	verified := "weft-cni-node on " + orDash(f.Source.Pod.Spec.NodeName) + " reports no missing rules for this pod"
	if !f.Source.CheckerOnNode {
		verified = "not verified: no weft-cni-node runs on the pod's node"
	}
	e.add("Capture", OK, fmt.Sprintf("outbound TCP to %s is redirected by the pod's iptables to Envoy :%d (%s)", dst, st.OutboundPort, generator.ListenerOutbound), verified)
	return true
}

// proxyPath is the request without Envoy: to a Service, the node's
// Service proxy picks a ready endpoint; to a pod, it goes straight there.
func proxyPath(f Facts) path {
	p := path{viaProxy: f.Dest.Service != nil}
	for i := range f.Endpoints {
		ep := &f.Endpoints[i]
		if ep.Ready || f.Dest.Pod != nil {
			p.targets = append(p.targets, target{addr: netip.AddrPortFrom(ep.IP, uint16(ep.Port)), endpoints: ep})
		}
	}
	return p
}

// envoyPath follows the connection through the source's Envoy: outbound
// listener, filter chain, route, cluster and its endpoints.
func envoyPath(e *Explanation, f Facts, proto model.Protocol) (path, Verdict, bool) {
	d := f.Source.Envoy
	dst := netip.AddrPortFrom(f.Dest.IP, uint16(f.Dest.PortNumber))
	if d == nil {
		return inferredPath(e, f), "", true
	}
	l, ok := d.Listener(generator.ListenerOutbound)
	if !ok {
		e.add("Listener", Fail, "the sidecar has no "+generator.ListenerOutbound+" listener: it has not received its config from pilot (meshctl proxy-status)")
		return path{}, Fails, false
	}
	transport := "raw_buffer"
	if proto == model.ProtocolTCP && f.Dest.Port != nil && strings.HasPrefix(f.Dest.Port.Name, "https") {
		transport = "tls"
	}
	fc, isDefault, ok := envoy.MatchChain(l, envoy.Connection{Dest: dst, TransportProtocol: transport})
	if !ok {
		e.add("Listener", Fail, "no filter chain of "+l.Name+" matches "+dst.String()+" and there is no default chain: Envoy closes the connection")
		return path{}, Fails, false
	}
	if isDefault {
		e.add("Listener", Info, fmt.Sprintf("%s: no filter chain matches %s → default chain %s: forwarded to the original destination in plaintext", l.Name, dst, fc.Name),
			passthroughWhy(f))
		p := proxyPath(f)
		if f.Dest.Service != nil {
			p.viaProxy = true
		}
		return p, "", true
	}
	e.add("Listener", OK, fmt.Sprintf("%s chain %s matches %s → %s", l.Name, fc.Name, fc.Match, fc.Destination()))
	clusters, v, ok := routeClusters(e, f, fc)
	if !ok {
		return path{}, v, false
	}
	return clusterTargets(e, f, clusters)
}

func passthroughWhy(f Facts) string {
	if f.Dest.Pod != nil {
		return "pods addressed by IP are not mesh Services: no mTLS from the client (unless a headless Service covers the pod)"
	}
	return "pilot generated no chain for this Service port (not visible to this namespace, no cluster IP, or not pushed yet): the node's Service proxy then picks the endpoint"
}

// routeClusters resolves the chain's HTTP route or TCP proxy to clusters.
func routeClusters(e *Explanation, f Facts, fc envoy.FilterChain) ([]envoy.WeightedCluster, Verdict, bool) {
	for _, flt := range fc.Filters {
		if t, ok := flt.TCPProxy(); ok {
			if t.WeightedClusters != nil {
				return t.WeightedClusters.Clusters, "", true
			}
			return []envoy.WeightedCluster{{Name: t.Cluster, Weight: 100}}, "", true
		}
		h, ok := flt.HCM()
		if !ok {
			continue
		}
		rc := h.RouteConfig
		if h.RDS != nil {
			got, found := f.Source.Envoy.RouteConfig(h.RDS.RouteConfigName)
			if !found {
				e.add("Route", Fail, "route configuration "+h.RDS.RouteConfigName+" has not arrived (RDS): Envoy holds the request until it does, then answers 404")
				return nil, Fails, false
			}
			rc = &got
		}
		if rc == nil {
			break
		}
		req := envoy.Request{Host: host(f), Path: f.Path}
		choice, found := envoy.SelectRoute(*rc, req)
		var details []string
		if len(choice.Skipped) > 0 {
			details = append(details, "skipped routes that need headers or query parameters: "+strings.Join(choice.Skipped, ", "))
		}
		if !found {
			e.add("Route", Fail, fmt.Sprintf("no route of %s matches %s %s (Host %s): Envoy answers 404", rc.Name, f.Method, f.Path, req.Host), details...)
			return nil, Fails, false
		}
		r := choice.Route
		if r.Route == nil || len(r.Route.Clusters()) == 0 {
			e.add("Route", Info, fmt.Sprintf("route %s of virtual host %s answers itself: %s", r.DescribeMatch(), choice.VirtualHost.Name, routeDestination(r)), details...)
			return nil, Fails, false
		}
		e.add("Route", OK, fmt.Sprintf("%s %s (Host %s): virtual host %s, route %s → %s", f.Method, f.Path, req.Host, choice.VirtualHost.Name, r.DescribeMatch(), routeDestination(r)), details...)
		return r.Route.Clusters(), "", true
	}
	e.add("Route", Fail, "the filter chain has neither a TCP proxy nor an HTTP connection manager meshctl understands")
	return nil, Fails, false
}

func routeDestination(r envoy.Route) string {
	switch {
	case r.DirectResponse != nil:
		return fmt.Sprintf("direct response %d", r.DirectResponse.Status)
	case len(r.Redirect) > 0:
		return "redirect"
	case r.Route == nil:
		return "-"
	}
	var parts []string
	cs := r.Route.Clusters()
	for _, c := range cs {
		if len(cs) > 1 {
			parts = append(parts, fmt.Sprintf("%s (weight %d)", c.Name, c.Weight))
		} else {
			parts = append(parts, "cluster "+c.Name)
		}
	}
	return strings.Join(parts, ", ")
}

// host is the Host header the request carries: the Service's name as
// clients in other namespaces write it.
func host(f Facts) string {
	if s := f.Dest.Service; s != nil {
		return s.Name + "." + s.Namespace + ".svc." + f.ClusterDomain
	}
	return f.Dest.IP.String()
}

// clusterTargets lists each cluster's endpoints as Envoy holds them.
func clusterTargets(e *Explanation, f Facts, clusters []envoy.WeightedCluster) (path, Verdict, bool) {
	var p path
	var details []string
	o := OK
	for _, wc := range clusters {
		c, ok := f.Source.Envoy.Cluster(wc.Name)
		if !ok {
			e.add("Cluster", Fail, "cluster "+wc.Name+" is missing from the sidecar (CDS not synced: meshctl proxy-status)")
			return path{}, Fails, false
		}
		mode, tls := c.UpstreamTLS()
		peers := ""
		if len(tls.SANs) > 0 {
			peers = ", peer must be " + strings.Join(tls.SANs, " or ")
		}
		line := fmt.Sprintf("%s: %s, %s, %s%s", c.Name, c.Kind(), c.Balancer(), transportWords[mode], peers)
		if c.Kind() == "ORIGINAL_DST" {
			addr := netip.AddrPortFrom(f.Dest.IP, uint16(f.Dest.PortNumber))
			p.targets = append(p.targets, originalDst(f, addr, mode == "mTLS", tls.SANs, c.Name)...)
			details = append(details, line)
			continue
		}
		la, found := f.Source.Envoy.LoadAssignment(c.EDSName())
		if !found {
			la = loadAssignmentOf(c)
		}
		eps := la.All()
		nMTLS := 0
		for _, ep := range eps {
			sa := ep.Endpoint.Address.SocketAddress
			ip, err := netip.ParseAddr(sa.Address)
			if err != nil {
				continue
			}
			m := mode == "mTLS" || mode == "auto" && ep.TLSMode(generator.TransportSocketMatchKey, generator.TLSModeKey) == generator.TLSModeWeft
			if m {
				nMTLS++
			}
			addr := netip.AddrPortFrom(ip, uint16(sa.PortValue))
			p.targets = append(p.targets, target{addr: addr, mtls: m, peerIDs: tls.SANs, cluster: c.Name, endpoints: findEndpoint(f, addr)})
		}
		line += fmt.Sprintf(": %s, %d with mTLS", plural(len(eps), "endpoint", "endpoints"), nMTLS)
		if len(eps) == 0 {
			o = Fail
			line += " — Envoy answers 503 (no healthy upstream)"
		}
		details = append(details, line)
		if diff := endpointDrift(f, eps); diff != "" && f.Dest.Service != nil && len(clusters) == 1 {
			details = append(details, diff)
			if o == OK {
				o = Warn
			}
		}
	}
	summary := fmt.Sprintf("%d clusters, weighted:", len(clusters))
	if len(clusters) == 1 {
		summary, details = details[0], details[1:]
	}
	e.add("Cluster", o, summary, details...)
	if len(p.targets) == 0 {
		return path{}, Fails, false
	}
	return p, "", true
}

var transportWords = map[string]string{
	"mTLS":      "always mTLS",
	"auto":      "mTLS to endpoints with a sidecar, plaintext to others",
	"plaintext": "plaintext",
}

func loadAssignmentOf(c envoy.Cluster) envoy.LoadAssignment {
	if c.LoadAssignment != nil {
		return *c.LoadAssignment
	}
	return envoy.LoadAssignment{}
}

// originalDst: Envoy connects to the address the app dialled. For a
// Service VIP the node's Service proxy then picks the endpoint.
func originalDst(f Facts, addr netip.AddrPort, mtls bool, peers []string, cluster string) []target {
	if ep := findEndpoint(f, addr); ep != nil {
		return []target{{addr: addr, mtls: mtls, peerIDs: peers, cluster: cluster, endpoints: ep}}
	}
	var out []target
	for _, t := range proxyPath(f).targets {
		t.mtls, t.peerIDs, t.cluster = mtls, peers, cluster
		out = append(out, t)
	}
	return out
}

func findEndpoint(f Facts, addr netip.AddrPort) *Endpoint {
	for i := range f.Endpoints {
		ep := &f.Endpoints[i]
		if ep.IP == addr.Addr() && ep.Port == int32(addr.Port()) {
			return ep
		}
	}
	return nil
}

// endpointDrift compares Envoy's endpoints with the ready EndpointSlice
// endpoints.
func endpointDrift(f Facts, eps []envoy.LbEndpoint) string {
	have := map[string]bool{}
	for _, ep := range eps {
		have[ep.Endpoint.Address.String()] = true
	}
	var missing []string
	want := 0
	for _, ep := range f.Endpoints {
		if !ep.Ready {
			continue
		}
		want++
		a := netip.AddrPortFrom(ep.IP, uint16(ep.Port)).String()
		if !have[a] {
			missing = append(missing, a)
		}
	}
	if len(missing) == 0 && want == len(eps) {
		return ""
	}
	return fmt.Sprintf("Envoy's endpoints differ from the EndpointSlices (%d in Envoy, %d ready; missing %s): pilot's push has not arrived yet (meshctl proxy-status)",
		len(eps), want, orDash(strings.Join(missing, ", ")))
}

// inferredPath is used when the source's Envoy config cannot be read: the
// cluster pilot generates for a Service port, mTLS to meshed endpoints.
func inferredPath(e *Explanation, f Facts) path {
	if f.Dest.Service == nil {
		e.add("Listener", Info, "inferred: pods addressed by IP go to PassthroughCluster, plaintext to the original destination")
		return proxyPath(f)
	}
	name := generator.OutboundClusterName(f.Dest.PortNumber, host(f))
	e.add("Cluster", Info, "inferred: cluster "+name+", mTLS to endpoints with a sidecar")
	p := proxyPath(f)
	p.viaProxy = false
	for i := range p.targets {
		if ep := p.targets[i].endpoints; ep != nil && ep.Pod != nil && hasSidecar(ep.Pod) {
			p.targets[i].mtls = true
		}
		p.targets[i].cluster = name
	}
	return p
}
