// Package rules is weft-proxy's pure rule planner: it renders the
// iptables-restore input that programs every Service of a model state, either
// completely (full sync) or only for the Services that changed plus the
// dispatch chains whose content changed (partial sync). The layout follows
// kube-proxy's iptables mode (pkg/proxy/iptables) so that operators find the
// chains they know, under the WEFT- prefix:
//
//	nat    PREROUTING, OUTPUT → WEFT-SERVICES → WEFT-SVC-/WEFT-SVL-/WEFT-EXT-/WEFT-FW- → WEFT-SEP- (DNAT)
//	       WEFT-SERVICES (last rule, local destinations) → WEFT-NODEPORTS → WEFT-EXT-
//	       POSTROUTING → WEFT-POSTROUTING (MASQUERADE packets marked by WEFT-MARK-MASQ)
//	filter WEFT-SERVICES, WEFT-EXTERNAL-SERVICES (REJECT/DROP without endpoints),
//	       WEFT-NODEPORTS (health-check ports), WEFT-FORWARD, WEFT-PROXY-FIREWALL
//
// The package does no I/O and does not log.
package rules

import (
	"crypto/sha256"
	"strings"

	"github.com/weftmesh/weft/proxy/model"
)

// Top-level chains, created and hooked by weft-proxy.
const (
	ServicesChain         = "WEFT-SERVICES"
	ExternalServicesChain = "WEFT-EXTERNAL-SERVICES"
	NodePortsChain        = "WEFT-NODEPORTS"
	PostroutingChain      = "WEFT-POSTROUTING"
	MarkMasqChain         = "WEFT-MARK-MASQ"
	ForwardChain          = "WEFT-FORWARD"
	FirewallChain         = "WEFT-PROXY-FIREWALL"
)

// Prefixes of the per-service chains. Only chains with these prefixes are ever
// deleted as stale, so chains of other Weft components (WEFT-GUARD, the CNI's
// chains) are never touched.
const (
	svcPrefix = "WEFT-SVC-" // endpoints for Cluster traffic policy
	svlPrefix = "WEFT-SVL-" // endpoints for Local traffic policy
	extPrefix = "WEFT-EXT-" // external destinations (NodePort, external and LB IPs)
	fwPrefix  = "WEFT-FW-"  // loadBalancerSourceRanges filter
	sepPrefix = "WEFT-SEP-" // one endpoint: hairpin mark + DNAT
)

// Tables weft-proxy writes.
const (
	TableNAT    = "nat"
	TableFilter = "filter"
)

// IsServiceChain reports whether a chain is a per-service chain owned by
// weft-proxy and so may be deleted when no Service needs it any more.
func IsServiceChain(name string) bool {
	for _, p := range []string{svcPrefix, svlPrefix, extPrefix, fwPrefix, sepPrefix} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// IsOwnChain reports whether a chain belongs to weft-proxy at all (top-level
// or per-service); --cleanup removes exactly these.
func IsOwnChain(name string) bool {
	switch name {
	case ServicesChain, ExternalServicesChain, NodePortsChain, PostroutingChain, MarkMasqChain, ForwardChain, FirewallChain:
		return true
	}
	return IsServiceChain(name)
}

// hash16 is 16 upper-case hex digits of the SHA-256 of the parts: stable
// across restarts and short enough for iptables' 28-character chain names.
func hash16(parts ...string) string {
	var buf [256]byte
	in := buf[:0]
	for _, p := range parts {
		in = append(in, p...)
	}
	sum := sha256.Sum256(in)
	const digits = "0123456789ABCDEF"
	var out [16]byte
	for i, b := range sum[:8] {
		out[2*i], out[2*i+1] = digits[b>>4], digits[b&0xf]
	}
	return string(out[:])
}

// serviceChains are the per-service-port chain names.
type serviceChains struct {
	svc, svl, ext, fw string
}

func chainsFor(p *model.ServicePort) serviceChains {
	h := hash16(p.Name.String(), string(p.Protocol))
	return serviceChains{svc: svcPrefix + h, svl: svlPrefix + h, ext: extPrefix + h, fw: fwPrefix + h}
}

// endpointChain names the chain of one endpoint of one service port.
func endpointChain(p *model.ServicePort, ep model.Endpoint) string {
	return sepPrefix + hash16(p.Name.String(), string(p.Protocol), ep.String())
}

// Hook is a jump from a built-in chain to one of weft-proxy's top-level
// chains. Hooks are the only rules weft-proxy puts into chains it does not
// own, so they are inserted (never flushed) and only when missing.
type Hook struct {
	Table, From, To string
	// Match is extra match text placed before the comment.
	Match   string
	Comment string
}

// Rule is the rule text after "-I <From> 1".
func (h Hook) Rule() string {
	r := ""
	if h.Match != "" {
		r = h.Match + " "
	}
	return r + `-m comment --comment "` + h.Comment + `" -j ` + h.To
}

// Hooks lists the jumps kube-proxy installs, with Weft's chain names.
var Hooks = []Hook{
	{TableFilter, "INPUT", ExternalServicesChain, "-m conntrack --ctstate NEW", "weft externally-visible service portals"},
	{TableFilter, "INPUT", NodePortsChain, "", "weft health check service ports"},
	{TableFilter, "INPUT", FirewallChain, "-m conntrack --ctstate NEW", "weft load balancer firewall"},
	{TableFilter, "FORWARD", ExternalServicesChain, "-m conntrack --ctstate NEW", "weft externally-visible service portals"},
	{TableFilter, "FORWARD", ServicesChain, "-m conntrack --ctstate NEW", "weft service portals"},
	{TableFilter, "FORWARD", ForwardChain, "", "weft forwarding rules"},
	{TableFilter, "FORWARD", FirewallChain, "-m conntrack --ctstate NEW", "weft load balancer firewall"},
	{TableFilter, "OUTPUT", ServicesChain, "-m conntrack --ctstate NEW", "weft service portals"},
	{TableFilter, "OUTPUT", FirewallChain, "-m conntrack --ctstate NEW", "weft load balancer firewall"},
	{TableNAT, "PREROUTING", ServicesChain, "", "weft service portals"},
	{TableNAT, "OUTPUT", ServicesChain, "", "weft service portals"},
	{TableNAT, "POSTROUTING", PostroutingChain, "", "weft postrouting rules"},
}
