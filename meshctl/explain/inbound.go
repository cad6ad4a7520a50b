package explain

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/meshctl/envoy"
	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// inboundSteps judges the request at each endpoint it may reach — mTLS
// mode, then authorization — and folds the endpoint verdicts into one.
func inboundSteps(e *Explanation, f Facts, p path, srcID string, proto model.Protocol) Explanation {
	if p.viaProxy {
		e.add("Service proxy", Info, fmt.Sprintf("the node's Service proxy (weft-proxy) DNATs %s:%d to one of %s, in plaintext",
			f.Dest.IP, f.Dest.PortNumber, plural(len(p.targets), "ready endpoint", "ready endpoints")))
	}
	var mtlsLines, envoyLines, authzLines []string
	mtlsOutcome, authzOutcome := OK, OK
	authzRan := false
	for _, t := range p.targets {
		ev, j := judge(f, t, srcID, proto)
		e.Endpoints = append(e.Endpoints, ev)
		if j.envoy != "" {
			envoyLines = appendUnique(envoyLines, j.envoy)
		}
		if j.mtls != "" {
			mtlsLines = appendUnique(mtlsLines, j.mtls)
			if !j.accepted {
				mtlsOutcome = Deny
			}
		}
		if j.authz != nil {
			authzRan = true
			authzLines = appendUnique(authzLines, j.authz.Reason)
			if !j.authz.Allowed {
				authzOutcome = Deny
			}
			for _, a := range j.authz.Audited {
				authzLines = appendUnique(authzLines, "audited (would be denied) by AUDIT policy "+a)
			}
		}
	}
	if len(mtlsLines) > 0 {
		e.add("mTLS", mtlsOutcome, mtlsLines[0], append(mtlsLines[1:], envoyLines...)...)
	}
	switch {
	case authzRan:
		e.add("Authorization", authzOutcome, authzLines[0], authzLines[1:]...)
	default:
		e.add("Authorization", Info, "not evaluated: no endpoint with a sidecar accepts the connection, so no AuthorizationPolicy is enforced")
	}
	return fold(e)
}

type judgement struct {
	mtls, envoy string
	accepted    bool
	authz       *AuthzDecision
}

// workload names the destination in reasons that hold for all its
// endpoints: the Service, else the pod.
func workload(f Facts, p *corev1.Pod) string {
	if s := f.Dest.Service; s != nil {
		return s.Name
	}
	return p.Name
}

// judge decides one endpoint.
func judge(f Facts, t target, srcID string, proto model.Protocol) (EndpointVerdict, judgement) {
	ev := EndpointVerdict{Address: t.addr.String(), Transport: "plaintext"}
	if t.mtls {
		ev.Transport = "mTLS"
	}
	var j judgement
	ep := t.endpoints
	if ep == nil || ep.Pod == nil {
		if t.mtls {
			ev.Verdict, ev.Reason = Fails, "mTLS to an address that is not a known pod of the destination"
			return ev, j
		}
		ev.Verdict, ev.Reason = Allowed, "not a pod: plaintext, no mesh policy applies"
		return ev, j
	}
	pod := ep.Pod
	ev.Pod = pod.Namespace + "/" + pod.Name
	st, err := annotation.ParseStatus(pod.Annotations[annotation.StatusAnnotation])
	if err != nil {
		if t.mtls {
			ev.Verdict, ev.Reason = Fails, "the client sends mTLS but "+pod.Name+" has no sidecar to terminate it"
			return ev, j
		}
		ev.Verdict, ev.Reason = Allowed, "no sidecar at the destination: plaintext straight to the app, no mTLS mode or authorization applies"
		j.mtls, j.accepted = "destination pods without a sidecar accept plaintext, unauthenticated", true
		return ev, j
	}
	if !inboundCaptured(st, ep.Port) {
		j.accepted = !t.mtls
		j.mtls = fmt.Sprintf("port %d bypasses the destination's sidecar (traffic.weft.dev/exclude-inbound-ports)", ep.Port)
		if t.mtls {
			ev.Verdict, ev.Reason = Fails, j.mtls+": the app receives the client's TLS"
			return ev, j
		}
		ev.Verdict, ev.Reason = Allowed, j.mtls+": no mTLS, no authorization"
		return ev, j
	}
	mode, source := governing(f, pod, ep.Port)
	ev.MTLSMode = string(mode)
	accepted, how := acceptByMode(mode, t.mtls)
	j.mtls = fmt.Sprintf("%s on port %d (%s): %s", mode, ep.Port, source, how)
	if f.Inbound != nil && f.InboundPod == ev.Pod {
		if ok2, how2, found := acceptByEnvoy(f.Inbound, netip.AddrPortFrom(ep.IP, uint16(ep.Port)), t.mtls); found {
			j.envoy = "confirmed by the sidecar of " + ev.Pod + ": " + how2
			if ok2 != accepted {
				j.envoy = "the sidecar of " + ev.Pod + " disagrees: " + how2 + fmt.Sprintf(" — pilot's policy says %s but has not pushed it yet (meshctl proxy-status)", mode)
			}
			accepted = ok2
		}
	}
	j.accepted = accepted
	if !accepted {
		ev.Verdict, ev.Reason = Denied, fmt.Sprintf("%s mTLS at %s (%s) refuses the client's %s", mode, workload(f, pod), source, ev.Transport)
		if f.Source.Sidecar == nil && !t.mtls {
			ev.Reason += ": the source has no sidecar"
		}
		if mode == model.MTLSDisable {
			ev.Verdict = Fails
		}
		return ev, j
	}
	principal := ""
	if t.mtls {
		principal = srcID
		if want := podIdentity(f, pod); len(t.peerIDs) > 0 && !slices.Contains(t.peerIDs, want) {
			ev.Verdict, ev.Reason = Fails, fmt.Sprintf("the client only accepts %s, but %s presents %s", strings.Join(t.peerIDs, ", "), pod.Name, want)
			return ev, j
		}
	}
	d := f.Authz.Authorize(AuthzRequest{Namespace: pod.Namespace, Labels: pod.Labels, Port: ep.Port, Principal: principal,
		HTTP: proto.IsHTTP(), Method: f.Method, Path: f.Path})
	j.authz = &d
	if !d.Allowed {
		ev.Verdict, ev.Reason = Denied, d.Reason
		return ev, j
	}
	ev.Verdict = Allowed
	if t.mtls {
		ev.Reason = fmt.Sprintf("mutual TLS as %s; %s mTLS at %s (%s); %s", srcID, mode, workload(f, pod), source, d.Reason)
	} else {
		ev.Reason = fmt.Sprintf("plaintext without identity; %s mTLS at %s (%s); %s", mode, workload(f, pod), source, d.Reason)
	}
	return ev, j
}

func inboundCaptured(st annotation.SidecarStatus, port int32) bool {
	if slices.Contains(st.ExcludeInboundPorts, uint16(port)) {
		return false
	}
	all, ports, err := st.InboundCapture()
	return err == nil && (all || slices.Contains(ports, uint16(port)))
}

func podIdentity(f Facts, p *corev1.Pod) string {
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", f.TrustDomain, p.Namespace, sa)
}

// governing resolves the pod's mode with model.ResolveMTLS (pilot's own
// function) and names the policy that set it.
func governing(f Facts, pod *corev1.Pod, port int32) (model.MTLSMode, string) {
	mode := model.ResolveMTLS(f.Policies, f.RootNamespace, pod.Namespace, pod.Labels).ForPort(port)
	var workload, ns, mesh *model.TLSPolicy
	set := labels.Set(pod.Labels)
	ps := slices.Clone(f.Policies)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Created.Before(ps[j].Created) })
	for _, p := range ps {
		switch {
		case p.Namespace == pod.Namespace && p.Selector != nil && p.Selector.Matches(set) && workload == nil:
			workload = p
		case p.Namespace == pod.Namespace && p.Selector == nil && pod.Namespace != f.RootNamespace && ns == nil:
			ns = p
		case p.Namespace == f.RootNamespace && p.Selector == nil && mesh == nil:
			mesh = p
		}
	}
	for _, c := range []struct {
		p     *model.TLSPolicy
		scope string
	}{{workload, "workload"}, {ns, "namespace"}, {mesh, "mesh-wide"}} {
		if c.p == nil {
			continue
		}
		if m, ok := c.p.PortModes[port]; ok && c.scope == "workload" && m == mode {
			return mode, fmt.Sprintf("MeshTLS %s, port-level", c.p.Key())
		}
		if c.p.Mode == mode {
			return mode, fmt.Sprintf("MeshTLS %s, %s", c.p.Key(), c.scope)
		}
	}
	return mode, "default: no MeshTLS applies"
}

func acceptByMode(mode model.MTLSMode, mtls bool) (bool, string) {
	switch {
	case mode == model.MTLSStrict && mtls, mode == model.MTLSPermissive && mtls:
		return true, "accepts the client's mTLS and authenticates it"
	case mode == model.MTLSStrict:
		return false, "plaintext is refused (the TLS handshake fails, the connection is reset)"
	case mode == model.MTLSDisable && mtls:
		return false, "the sidecar expects plaintext; the client's mTLS reaches the app as TLS bytes"
	case mode == model.MTLSDisable:
		return true, "plaintext accepted"
	}
	return true, "plaintext accepted, the caller has no identity"
}

// acceptByEnvoy matches the connection against the destination sidecar's
// inbound listener, as Envoy will (found is false without a listener).
func acceptByEnvoy(d *envoy.ConfigDump, dst netip.AddrPort, mtls bool) (ok bool, how string, found bool) {
	l, has := d.Listener(generator.ListenerInbound)
	if !has {
		return false, "", false
	}
	conn := envoy.Connection{Dest: dst, TransportProtocol: "raw_buffer"}
	if mtls {
		conn.TransportProtocol, conn.ALPN = "tls", []string{generator.ALPNWeft}
	}
	fc, _, matched := envoy.MatchChain(l, conn)
	if !matched {
		return false, "no inbound filter chain matches: Envoy closes the connection", true
	}
	tls, hasTLS := fc.TransportSocket.TLS()
	switch {
	case hasTLS && mtls:
		return true, fmt.Sprintf("Envoy's inbound chain %s terminates mTLS (peers %s)", fc.Name, strings.Join(tls.SANs, ",")), true
	case hasTLS:
		return false, fmt.Sprintf("Envoy's inbound chain %s requires mTLS: plaintext fails the handshake", fc.Name), true
	case mtls:
		return false, fmt.Sprintf("Envoy's inbound chain %s does not terminate TLS: the app receives the client's TLS", fc.Name), true
	}
	return true, fmt.Sprintf("Envoy's inbound chain %s accepts plaintext", fc.Name), true
}

// fold turns the endpoint verdicts into the overall one.
func fold(e *Explanation) Explanation {
	counts := map[Verdict]int{}
	var reasons []string
	for _, ev := range e.Endpoints {
		counts[ev.Verdict]++
		reasons = appendUnique(reasons, ev.Reason)
	}
	n := len(e.Endpoints)
	switch {
	case n == 0:
		return e.finish(Fails, "the request reaches no endpoint")
	case counts[Allowed] == n && len(reasons) == 1:
		return e.finish(Allowed, fmt.Sprintf("%s (%s)", reasons[0], plural(n, "endpoint", "endpoints")))
	case counts[Allowed] == n:
		return e.finish(Allowed, strings.Join(reasons, "; or "))
	case counts[Denied] == n:
		return e.finish(Denied, reasons[0])
	case counts[Fails] == n:
		return e.finish(Fails, reasons[0])
	case counts[Allowed] == 0:
		return e.finish(Denied, strings.Join(reasons, "; "))
	}
	var bad []string
	for _, ev := range e.Endpoints {
		if ev.Verdict != Allowed {
			bad = append(bad, fmt.Sprintf("%s (%s): %s", ev.Address, ev.Pod, ev.Reason))
		}
	}
	return e.finish(Partial, fmt.Sprintf("%d of %d endpoints allow it; refused at %s", counts[Allowed], n, list(bad, 3)))
}

func appendUnique(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
