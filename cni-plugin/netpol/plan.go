package netpol

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Names of the per-pod and per-policy objects: a fixed prefix and 16 hex
// digits of the SHA-256 of namespace/name (nft names are limited to 255
// bytes; a pod key can be longer). Rules carry the readable name.
func hash16(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// PodChain is the chain holding a pod's policy verdict in one direction.
func PodChain(d Direction, podKey string) string { return "pod-" + d.short() + "-" + hash16(podKey) }

// PolicyChain is the chain of a policy's allow rules in one direction.
func PolicyChain(d Direction, policyKey string) string {
	return "pol-" + d.short() + "-" + hash16(policyKey)
}

func peerSet(d Direction, policyKey string, rule int) string {
	return fmt.Sprintf("peers-%s-%s-%d", d.short(), hash16(policyKey), rule)
}

func portSet(d Direction, policyKey string, rule int) string {
	return fmt.Sprintf("ports-%s-%s-%d", d.short(), hash16(policyKey), rule)
}

// DropCounter is the counter object of the packets dropped in a namespace
// in one direction: "drop-ingress-<namespace>".
func DropCounter(d Direction, namespace string) string { return "drop-" + d.String() + "-" + namespace }

// comment keeps a rule comment within nftables' 256-byte user data.
func comment(s string) string {
	if len(s) > 250 {
		return s[:250]
	}
	return s
}

// remote is the header field holding the other end of a connection.
func remote(d Direction) Addr {
	if d == Ingress {
		return Src
	}
	return Dst
}

// local is the header field holding this node's pod.
func local(d Direction) Addr { return remote(d) ^ 1 }

// Plan builds the whole table for s: base chains and dispatch maps always;
// a chain per isolated pod of this node and direction, jumping to the
// chain of every policy that selects it, then dropping; a chain per policy
// (and direction) that selects a pod of this node, with one accept rule
// per peer-set and port of each of its rules. Policies that select no pod
// here are not programmed. Plan is pure and deterministic.
func Plan(s State) *Ruleset {
	ix := newIndex(s)
	pl := &planner{ix: ix, namespaces: ix.sortedNamespaces(), rs: &Ruleset{}, counters: map[string]bool{}}
	policies := slices.Clone(s.Policies)
	slices.SortFunc(policies, func(a, b *Policy) int { return strings.Compare(a.Key(), b.Key()) })

	selectedBy := map[*Pod]*[2][]*Policy{}
	for _, pol := range policies {
		targets := pl.localTargets(pol)
		if len(targets) == 0 {
			continue
		}
		pl.rs.Policies = append(pl.rs.Policies, pol.Key())
		for d := Ingress; d <= Egress; d++ {
			if !pol.Isolates[d] {
				continue
			}
			pl.policyChain(pol, d, targets)
			for _, p := range targets {
				if selectedBy[p] == nil {
					selectedBy[p] = &[2][]*Policy{}
				}
				selectedBy[p][d] = append(selectedBy[p][d], pol)
			}
		}
	}
	maps := [2]*Set{{Name: MapIngress, Type: VerdictMap}, {Name: MapEgress, Type: VerdictMap}}
	for _, p := range ix.local {
		sel := selectedBy[p]
		if sel == nil {
			continue
		}
		pl.rs.Isolated++
		for d := Ingress; d <= Egress; d++ {
			if len(sel[d]) > 0 {
				maps[d].Jumps = append(maps[d].Jumps, pl.podChain(p, d, sel[d]))
			}
		}
	}
	for _, m := range maps {
		slices.SortFunc(m.Jumps, func(a, b Jump) int { return a.Addr.Compare(b.Addr) })
		pl.rs.Sets = append(pl.rs.Sets, m)
	}
	pl.rs.Chains = append(pl.rs.Chains, baseChain(Ingress), baseChain(Egress))
	for c := range pl.counters {
		pl.rs.Counters = append(pl.rs.Counters, c)
	}
	sortRuleset(pl.rs)
	return pl.rs
}

type planner struct {
	ix         *index
	namespaces []string
	rs         *Ruleset
	counters   map[string]bool
}

func baseChain(d Direction) *Chain {
	c := &Chain{Name: ChainIngress, Base: true, Priority: priorityIngress}
	m := MapIngress
	if d == Egress {
		c.Name, c.Priority, m = ChainEgress, priorityEgress, MapEgress
	}
	c.Rules = []Rule{
		{Established: true, Verdict: Accept, Comment: "replies and connections already allowed"},
		{IPv4: true, VMapSide: local(d), VMap: m, Comment: "pods of this node isolated for " + d.String()},
	}
	return c
}

// localTargets are the pods of this node the policy selects.
func (pl *planner) localTargets(pol *Policy) []*Pod {
	var out []*Pod
	for _, p := range pl.ix.byNS[pol.Namespace] {
		if p.Node == pl.ix.node && pol.Selector.Matches(p.Labels) {
			out = append(out, p)
		}
	}
	return out
}

func (pl *planner) podChain(p *Pod, d Direction, policies []*Policy) Jump {
	c := &Chain{Name: PodChain(d, p.Key())}
	c.Rules = append(c.Rules, Rule{AddrSide: remote(d), Addr: p.IP, Verdict: Accept,
		Comment: comment(p.Key() + ": a pod may always reach itself")})
	for _, pol := range policies {
		c.Rules = append(c.Rules, Rule{Verdict: JumpTo, Target: PolicyChain(d, pol.Key()), Comment: comment(pol.Key())})
	}
	counter := DropCounter(d, p.Namespace)
	pl.counters[counter] = true
	c.Rules = append(c.Rules, Rule{Counter: counter, Verdict: Drop,
		Comment: comment(fmt.Sprintf("%s: %s not allowed by any policy", p.Key(), d))})
	pl.rs.Chains = append(pl.rs.Chains, c)
	return Jump{Addr: p.IP, Chain: c.Name}
}

// policyChain writes the chain and sets of one policy and direction.
func (pl *planner) policyChain(pol *Policy, d Direction, targets []*Pod) {
	c := &Chain{Name: PolicyChain(d, pol.Key())}
	for _, r := range pol.Rules[d] {
		base := Rule{AddrSide: remote(d), Verdict: Accept, Comment: comment(fmt.Sprintf("%s %s rule %d", pol.Key(), d, r.Index))}
		var peers Ranges
		if len(r.Peers) > 0 {
			peers = pl.peerAddrs(pol, r)
			set := &Set{Name: peerSet(d, pol.Key(), r.Index), Type: AddrSet, Addrs: peers}
			pl.rs.Sets = append(pl.rs.Sets, set)
			base.AddrSet = set.Name
		}
		if len(r.Ports) == 0 {
			c.Rules = append(c.Rules, base)
			continue
		}
		var named []Port
		for _, port := range r.Ports {
			if port.Name != "" {
				named = append(named, port)
				continue
			}
			rule := base
			rule.Protocol, rule.Port, rule.EndPort = port.Protocol, port.Port, port.EndPort
			c.Rules = append(c.Rules, rule)
		}
		if len(named) > 0 {
			// Ingress: the named port of the selected pod (the packet's
			// destination). Egress: of the peer pod it goes to.
			owners := targets
			if d == Egress {
				owners = pl.egressOwners(r, peers)
			}
			set := &Set{Name: portSet(d, pol.Key(), r.Index), Type: PortSet, Ports: resolveNamedPorts(owners, named)}
			pl.rs.Sets = append(pl.rs.Sets, set)
			rule := base
			rule.PortSet = set.Name
			c.Rules = append(c.Rules, rule)
		}
	}
	pl.rs.Chains = append(pl.rs.Chains, c)
}

// peerAddrs resolves a rule's peers to one merged address set: the pods
// its selectors match and its ipBlocks less their exceptions.
func (pl *planner) peerAddrs(pol *Policy, r AllowRule) Ranges {
	var rs []Range
	for _, peer := range r.Peers {
		if peer.IsBlock {
			rs = append(rs, peer.Block...)
			continue
		}
		for _, p := range pl.selectPeerPods(pol.Namespace, peer) {
			rs = append(rs, AddrRange(p.IP))
		}
	}
	return MergeRanges(rs)
}

// selectPeerPods is NetworkPolicyPeer selection: podSelector alone picks
// pods of the policy's namespace, namespaceSelector alone every pod of the
// matching namespaces, both together the matching pods of those.
func (pl *planner) selectPeerPods(policyNS string, peer Peer) []*Pod {
	namespaces := []string{policyNS}
	if peer.NamespaceSelector != nil {
		namespaces = nil
		for _, ns := range pl.namespaces {
			if peer.NamespaceSelector.Matches(pl.ix.namespaceLabels(ns)) {
				namespaces = append(namespaces, ns)
			}
		}
	}
	var out []*Pod
	for _, ns := range namespaces {
		for _, p := range pl.ix.byNS[ns] {
			if peer.PodSelector == nil || peer.PodSelector.Matches(p.Labels) {
				out = append(out, p)
			}
		}
	}
	return out
}

// egressOwners are the pods an egress rule's named ports are looked up
// on: every pod if the rule has no peers, else the pods whose address its
// peers cover.
func (pl *planner) egressOwners(r AllowRule, peers Ranges) []*Pod {
	if len(r.Peers) == 0 {
		return pl.ix.all
	}
	var out []*Pod
	for _, p := range pl.ix.all {
		if peers.Contains(p.IP) {
			out = append(out, p)
		}
	}
	return out
}

// resolveNamedPorts lists (pod address, protocol, port) for every pod
// that has a container port of one of the names with that protocol.
func resolveNamedPorts(pods []*Pod, named []Port) []AddrPort {
	seen := map[AddrPort]bool{}
	var out []AddrPort
	for _, p := range pods {
		for _, want := range named {
			for _, cp := range p.Ports {
				e := AddrPort{Addr: p.IP, Protocol: cp.Protocol, Port: cp.Port}
				if cp.Name == want.Name && cp.Protocol == want.Protocol && !seen[e] {
					seen[e] = true
					out = append(out, e)
				}
			}
		}
	}
	slices.SortFunc(out, compareAddrPort)
	return out
}

func compareAddrPort(a, b AddrPort) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}

// Addresses lists the addresses a rule's peers resolve to, for tests and
// debugging: the pods selected (by key) and the ranges.
func Addresses(s State, pol *Policy, d Direction, rule int) (Ranges, bool) {
	ix := newIndex(s)
	pl := &planner{ix: ix, namespaces: ix.sortedNamespaces()}
	for _, r := range pol.Rules[d] {
		if r.Index == rule {
			return pl.peerAddrs(pol, r), true
		}
	}
	return nil, false
}
