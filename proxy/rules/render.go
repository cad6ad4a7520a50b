package rules

import (
	"net/netip"
	"strconv"

	"github.com/weftmesh/weft/proxy/model"
)

// dispatch identifies a top-level chain that every Service contributes rules
// to. Partial syncs rewrite such a chain only when some contribution changed.
type dispatch int

const (
	natServices dispatch = iota
	natNodePorts
	filterServices
	filterExternal
	filterNodePorts
	filterFirewall
	numDispatch
)

func (d dispatch) table() string {
	if d <= natNodePorts {
		return TableNAT
	}
	return TableFilter
}

func (d dispatch) chain() string {
	return [...]string{ServicesChain, NodePortsChain, ServicesChain, ExternalServicesChain, NodePortsChain, FirewallChain}[d]
}

// lines accumulates restore lines.
type lines struct {
	b []byte
	n int
}

// rule starts `-A chain -m comment --comment "comment"`; every rule Weft
// writes carries a comment naming its Service.
// The comment is given in parts to save building the string.
func (l *lines) rule(chain string, comment ...string) *lines {
	if l.b == nil {
		l.b = make([]byte, 0, 256)
	}
	l.b = append(l.b, "-A "...)
	l.b = append(l.b, chain...)
	l.b = append(l.b, ` -m comment --comment "`...)
	for _, c := range comment {
		l.b = append(l.b, c...)
	}
	l.b = append(l.b, '"')
	return l
}

// w appends words to the current rule.
func (l *lines) w(words ...string) *lines {
	for _, w := range words {
		l.b = append(l.b, ' ')
		l.b = append(l.b, w...)
	}
	return l
}

// end finishes the current rule.
func (l *lines) end() {
	l.b = append(l.b, '\n')
	l.n++
}

// rendered is one Service's contribution to the tables. It is immutable once
// built, so partial syncs can reuse it until the Service changes.
type rendered struct {
	dispatch [numDispatch]lines
	// chains are the Service's own nat chains, in the order declared.
	chains []string
	body   lines
}

// renderer holds the per-sync settings rendering depends on.
type renderer struct {
	clusterCIDR string
	nodeIPs     []netip.Addr
	probs       []string // probs[n] = 1/n formatted for -m statistic
}

func (r *renderer) probability(n int) string {
	for len(r.probs) <= n {
		r.probs = append(r.probs, strconv.FormatFloat(1/float64(len(r.probs)), 'f', 10, 64))
	}
	return r.probs[n]
}

// render builds the rules of every port of one Service.
func (r *renderer) render(svc *model.Service) *rendered {
	out := &rendered{}
	for i := range svc.Ports {
		p := &svc.Ports[i]
		r.renderPort(out, p, model.Categorize(p, svc.Endpoints[p.Name.Port]))
	}
	return out
}

// portPlan holds the decisions for one service port, mirroring kube-proxy's
// traffic-policy semantics.
type portPlan struct {
	p                 *model.ServicePort
	c                 model.Categorized
	name, proto, port string
	ch                serviceChains
	// internalChain receives cluster-IP traffic when hasInternal.
	internalChain string
	hasInternal   bool
	// externalPolicy receives external traffic (via the EXT chain) when
	// hasExternal.
	externalPolicy   string
	hasExternal      bool
	usesExt, usesFW  bool
	usesSVC, usesSVL bool
	// lbTarget receives load-balancer IP traffic: the FW chain when source
	// ranges apply, else the EXT chain.
	lbTarget string
	// internalDeny/externalDeny (REJECT or DROP) and their comments apply
	// when there is no endpoint for that kind of traffic.
	internalDeny, internalDenyWhy string
	externalDeny, externalDenyWhy string
}

func newPortPlan(p *model.ServicePort, c model.Categorized) *portPlan {
	pp := &portPlan{p: p, c: c, name: p.Name.String(), proto: string(p.Protocol), port: strconv.Itoa(int(p.Port)), ch: chainsFor(p)}
	pp.internalChain, pp.hasInternal = pp.ch.svc, c.Any
	if p.InternalLocal {
		pp.internalChain, pp.hasInternal = pp.ch.svl, len(c.Local) > 0
	}
	pp.externalPolicy, pp.hasExternal = pp.ch.svc, c.Any
	if p.ExternalLocal {
		pp.externalPolicy, pp.hasExternal = pp.ch.svl, len(c.Local) > 0
	}
	pp.usesExt = c.Any && p.ExternallyAccessible()
	pp.usesFW = c.Any && len(p.LoadBalancerIPs) > 0 && p.Firewalled
	pp.usesSVC = len(c.Cluster) > 0 && p.UsesClusterEndpoints()
	pp.usesSVL = len(c.Local) > 0 && p.UsesLocalEndpoints()
	pp.lbTarget = pp.ch.ext
	if pp.usesFW {
		pp.lbTarget = pp.ch.fw
	}
	if !c.Any {
		pp.internalDeny, pp.internalDenyWhy = "REJECT", pp.name+" has no endpoints"
		pp.externalDeny, pp.externalDenyWhy = "REJECT", pp.name+" has no endpoints"
		return pp
	}
	if !pp.hasInternal {
		pp.internalDeny, pp.internalDenyWhy = "DROP", pp.name+" has no local endpoints"
	}
	if !pp.hasExternal {
		pp.externalDeny, pp.externalDenyWhy = "DROP", pp.name+" has no local endpoints"
	}
	return pp
}

func (r *renderer) renderPort(out *rendered, p *model.ServicePort, c model.Categorized) {
	pp := newPortPlan(p, c)
	r.renderDispatch(out, pp)
	r.renderChains(out, pp)
}

// renderDispatch writes the Service's rules in the shared top-level chains.
func (r *renderer) renderDispatch(out *rendered, pp *portPlan) {
	p, d := pp.p, &out.dispatch
	match := func(ip netip.Addr) []string {
		return []string{"-d", ip.String() + "/32", "-p", pp.proto, "-m", pp.proto, "--dport", pp.port}
	}
	if pp.hasInternal {
		d[natServices].rule(ServicesChain, pp.name, " cluster IP").w(match(p.ClusterIP)...).w("-j", pp.internalChain).end()
	} else {
		d[filterServices].rule(ServicesChain, pp.internalDenyWhy).w(match(p.ClusterIP)...).w("-j", pp.internalDeny).end()
	}
	for _, ip := range p.ExternalIPs {
		if pp.c.Any {
			d[natServices].rule(ServicesChain, pp.name, " external IP").w(match(ip)...).w("-j", pp.ch.ext).end()
		}
		if !pp.hasExternal {
			d[filterExternal].rule(ExternalServicesChain, pp.externalDenyWhy).w(match(ip)...).w("-j", pp.externalDeny).end()
		}
	}
	for _, ip := range p.LoadBalancerIPs {
		if pp.c.Any {
			d[natServices].rule(ServicesChain, pp.name, " loadbalancer IP").w(match(ip)...).w("-j", pp.lbTarget).end()
		}
		if pp.usesFW {
			d[filterFirewall].rule(FirewallChain, pp.name, " traffic not accepted by ", pp.ch.fw).w(match(ip)...).w("-j", "DROP").end()
		}
		if !pp.hasExternal {
			d[filterExternal].rule(ExternalServicesChain, pp.externalDenyWhy).w(match(ip)...).w("-j", pp.externalDeny).end()
		}
	}
	if p.NodePort != 0 {
		np := strconv.Itoa(int(p.NodePort))
		if pp.c.Any {
			d[natNodePorts].rule(NodePortsChain, pp.name, " node port").w("-p", pp.proto, "-m", pp.proto, "--dport", np, "-j", pp.ch.ext).end()
		}
		if !pp.hasExternal {
			d[filterExternal].rule(ExternalServicesChain, pp.externalDenyWhy).w("-m", "addrtype", "--dst-type", "LOCAL", "-p", pp.proto, "-m", pp.proto, "--dport", np, "-j", pp.externalDeny).end()
		}
	}
	if p.HealthCheckNodePort != 0 {
		d[filterNodePorts].rule(NodePortsChain, pp.name, " health check node port").w("-p", "tcp", "-m", "tcp", "--dport", strconv.Itoa(int(p.HealthCheckNodePort)), "-j", "ACCEPT").end()
	}
}

// renderChains writes the Service's own nat chains.
func (r *renderer) renderChains(out *rendered, pp *portPlan) {
	p, b := pp.p, &out.body
	if pp.usesExt {
		ext := pp.ch.ext
		out.chains = append(out.chains, ext)
		if !p.ExternalLocal {
			b.rule(ext, "masquerade traffic for ", pp.name, " external destinations").w("-j", MarkMasqChain).end()
		} else {
			// Pods and the node itself reach eTP=Local addresses through all
			// endpoints, as if they went out to the load balancer and back.
			b.rule(ext, "pod traffic for ", pp.name, " external destinations").w("-s", r.clusterCIDR, "-j", pp.ch.svc).end()
			b.rule(ext, "masquerade LOCAL traffic for ", pp.name, " external destinations").w("-m", "addrtype", "--src-type", "LOCAL", "-j", MarkMasqChain).end()
			b.rule(ext, "route LOCAL traffic for ", pp.name, " external destinations").w("-m", "addrtype", "--src-type", "LOCAL", "-j", pp.ch.svc).end()
		}
		if pp.hasExternal {
			b.rule(ext, pp.name, " external destinations").w("-j", pp.externalPolicy).end()
		}
	}
	if pp.usesFW {
		r.renderFirewall(out, pp)
	}
	if pp.usesSVC {
		r.renderPolicyChain(out, pp, pp.ch.svc, pp.c.Cluster)
	}
	if pp.usesSVL {
		r.renderPolicyChain(out, pp, pp.ch.svl, pp.c.Local)
	}
	for _, ep := range pp.c.Reachable {
		sep := endpointChain(p, ep)
		out.chains = append(out.chains, sep)
		// Hairpin: a pod reaching itself through the VIP must be SNATed or
		// its reply would bypass the reverse NAT. Only pods of this node send
		// through this node's rules, so an endpoint known to live elsewhere
		// cannot be its own client here — except via the un-masqueraded
		// short-circuit of an eTP=Local external address (a pod calling
		// another node's node port).
		if !ep.Remote || p.ExternalLocal {
			b.rule(sep, pp.name).w("-s", ep.IP.String()+"/32", "-j", MarkMasqChain).end()
		}
		b.rule(sep, pp.name)
		if p.AffinitySeconds > 0 {
			b.w("-m", "recent", "--set", "--name", sep, "--mask", "255.255.255.255", "--rsource")
		}
		b.w("-p", pp.proto, "-m", pp.proto, "-j", "DNAT", "--to-destination", ep.String()).end()
	}
}

// renderFirewall writes the loadBalancerSourceRanges chain: allowed sources
// continue to the external chain, the rest fall through un-NATed and are
// dropped by WEFT-PROXY-FIREWALL in the filter table.
func (r *renderer) renderFirewall(out *rendered, pp *portPlan) {
	p, b, fw := pp.p, &out.body, pp.ch.fw
	out.chains = append(out.chains, fw)
	fromNode := false
	for _, src := range p.SourceRanges {
		b.rule(fw, pp.name, " loadbalancer IP").w("-s", src.String(), "-j", pp.ch.ext).end()
		for _, ip := range r.nodeIPs {
			fromNode = fromNode || src.Contains(ip)
		}
	}
	// A node reaching its own LB IP loops back with the VIP as source.
	if fromNode {
		for _, ip := range p.LoadBalancerIPs {
			b.rule(fw, pp.name, " loadbalancer IP").w("-s", ip.String()+"/32", "-j", pp.ch.ext).end()
		}
	}
	b.rule(fw, "other traffic to ", pp.name, " will be dropped by ", FirewallChain).end()
}

// renderPolicyChain writes a WEFT-SVC- or WEFT-SVL- chain: off-cluster
// sources of cluster-IP traffic are marked for masquerade, affine clients go
// back to their endpoint, everyone else picks one at random.
func (r *renderer) renderPolicyChain(out *rendered, pp *portPlan, chain string, eps []model.Endpoint) {
	p, b := pp.p, &out.body
	out.chains = append(out.chains, chain)
	if chain == pp.internalChain && pp.hasInternal {
		b.rule(chain, pp.name, " cluster IP").w("-d", p.ClusterIP.String()+"/32", "-p", pp.proto, "-m", pp.proto, "--dport", pp.port, "!", "-s", r.clusterCIDR, "-j", MarkMasqChain).end()
	}
	seps := make([]string, len(eps))
	for i, ep := range eps {
		seps[i] = endpointChain(p, ep)
	}
	if p.AffinitySeconds > 0 {
		secs := strconv.Itoa(int(p.AffinitySeconds))
		for i, ep := range eps {
			b.rule(chain, pp.name, " -> ", ep.String()).w("-m", "recent", "--rcheck", "--seconds", secs, "--reap", "--name", seps[i], "--mask", "255.255.255.255", "--rsource", "-j", seps[i]).end()
		}
	}
	for i, ep := range eps {
		b.rule(chain, pp.name, " -> ", ep.String())
		if left := len(eps) - i; left > 1 {
			b.w("-m", "statistic", "--mode", "random", "--probability", r.probability(left))
		}
		b.w("-j", seps[i]).end()
	}
}
