package netpol

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// TableName is Weft's nftables table (family inet). It belongs to
// weft-cni-node alone: iptables-nft (weft-proxy, kubelet) uses its own ip
// tables, so neither rewrites nor zeroes the other's state.
const TableName = "weft-netpol"

// Names of the fixed objects in the table.
const (
	// ChainIngress and ChainEgress are the base chains on the forward
	// hook: every pod-to-pod packet, bridged (br_netfilter) or routed,
	// passes both. A packet is dropped if either drops it.
	ChainIngress = "ingress"
	ChainEgress  = "egress"
	// MapIngress and MapEgress map the address of each isolated pod of
	// this node to a jump to its pod chain.
	MapIngress = "ingress-pods"
	MapEgress  = "egress-pods"
)

// Hook priorities of the base chains, relative to "filter" (0). The order
// does not matter for the verdict (a drop anywhere is final); egress runs
// first so a packet leaving an isolated pod is counted there.
const (
	priorityEgress  = -1
	priorityIngress = 0
)

// SetType is the kind of a named set.
type SetType uint8

// Set types.
const (
	// AddrSet holds IPv4 ranges (type ipv4_addr; flags interval).
	AddrSet SetType = iota
	// PortSet holds address, protocol, port triples for named ports
	// (type ipv4_addr . inet_proto . inet_service).
	PortSet
	// VerdictMap maps an address to a jump (type ipv4_addr : verdict).
	VerdictMap
)

// AddrPort is a PortSet element.
type AddrPort struct {
	Addr     netip.Addr
	Protocol Protocol
	Port     uint16
}

// String is the element in nft syntax: "10.244.1.5 . tcp . 8080".
func (e AddrPort) String() string {
	return fmt.Sprintf("%s . %s . %d", e.Addr, e.Protocol, e.Port)
}

// Jump is a VerdictMap element.
type Jump struct {
	Addr  netip.Addr
	Chain string
}

// String is the element in nft syntax: "10.244.1.5 : jump pod-in-…".
func (j Jump) String() string { return fmt.Sprintf("%s : jump %s", j.Addr, j.Chain) }

// Set is a named set or verdict map with its elements, sorted.
type Set struct {
	Name  string
	Type  SetType
	Addrs Ranges     // AddrSet
	Ports []AddrPort // PortSet
	Jumps []Jump     // VerdictMap
}

// Len is the number of elements.
func (s *Set) Len() int { return len(s.Addrs) + len(s.Ports) + len(s.Jumps) }

// elements renders each element in nft syntax.
func (s *Set) elements() []string {
	var out []string
	for _, r := range s.Addrs {
		out = append(out, r.String())
	}
	for _, p := range s.Ports {
		out = append(out, p.String())
	}
	for _, j := range s.Jumps {
		out = append(out, j.String())
	}
	return out
}

func (s *Set) typeSpec() string {
	switch s.Type {
	case PortSet:
		return "type ipv4_addr . inet_proto . inet_service;"
	case VerdictMap:
		return "type ipv4_addr : verdict;"
	}
	return "type ipv4_addr; flags interval;"
}

func (s *Set) keyword() string {
	if s.Type == VerdictMap {
		return "map"
	}
	return "set"
}

// VerdictKind is what a rule does when it matches.
type VerdictKind uint8

// Verdicts.
const (
	VerdictNone VerdictKind = iota // the rule ends in a verdict map
	Accept
	Drop
	JumpTo
)

// Addr is one side of a packet's IPv4 header.
type Addr uint8

// Source and destination.
const (
	Src Addr = iota
	Dst
)

func (a Addr) nft() string {
	if a == Src {
		return "ip saddr"
	}
	return "ip daddr"
}

// Rule is one nftables rule as data. The matches are rendered (and
// encoded) in field order, every field optional; Comment names the policy
// or pod the rule is for (DESIGN.md: every rule carries a comment).
type Rule struct {
	// Established matches ct state established,related.
	Established bool
	// IPv4 matches meta nfproto ipv4 (the table is inet).
	IPv4 bool
	// AddrSide with Addr matches one address; with AddrSet a named set.
	AddrSide Addr
	Addr     netip.Addr
	AddrSet  string
	// Protocol matches meta l4proto; Port..EndPort then th dport.
	Protocol      Protocol
	Port, EndPort uint16
	// PortSet matches ip daddr . meta l4proto . th dport @PortSet.
	PortSet string
	// VMapSide with VMap dispatches through a verdict map.
	VMapSide Addr
	VMap     string
	// Counter names the counter object the rule updates.
	Counter string
	Verdict VerdictKind
	Target  string // chain of JumpTo
	Comment string
}

// String renders the rule in nft syntax.
func (r *Rule) String() string {
	var b []string
	if r.Established {
		b = append(b, "ct state established,related")
	}
	if r.IPv4 {
		b = append(b, "meta nfproto ipv4")
	}
	if r.Addr.IsValid() {
		b = append(b, r.AddrSide.nft(), r.Addr.String())
	}
	if r.AddrSet != "" {
		b = append(b, r.AddrSide.nft(), "@"+r.AddrSet)
	}
	if r.Protocol != 0 {
		b = append(b, "meta l4proto", r.Protocol.String())
		switch {
		case r.Port != 0 && r.EndPort > r.Port:
			b = append(b, "th dport", fmt.Sprintf("%d-%d", r.Port, r.EndPort))
		case r.Port != 0:
			b = append(b, "th dport", strconv.Itoa(int(r.Port)))
		}
	}
	if r.PortSet != "" {
		b = append(b, "ip daddr . meta l4proto . th dport", "@"+r.PortSet)
	}
	if r.VMap != "" {
		b = append(b, r.VMapSide.nft(), "vmap", "@"+r.VMap)
	}
	if r.Counter != "" {
		b = append(b, "counter name", strconv.Quote(r.Counter))
	}
	switch r.Verdict {
	case Accept:
		b = append(b, "accept")
	case Drop:
		b = append(b, "drop")
	case JumpTo:
		b = append(b, "jump", r.Target)
	}
	if r.Comment != "" {
		b = append(b, "comment", strconv.Quote(r.Comment))
	}
	return strings.Join(b, " ")
}

// Chain is a chain with its rules. Base chains have a hook priority.
type Chain struct {
	Name     string
	Base     bool
	Priority int
	Rules    []Rule
}

// header is the base chain declaration.
func (c *Chain) header() string {
	prio := "filter"
	if c.Priority != 0 {
		prio = fmt.Sprintf("filter %+d", c.Priority)
		prio = strings.Replace(strings.Replace(prio, "+", "+ ", 1), "-", "- ", 1)
	}
	return fmt.Sprintf("type filter hook forward priority %s; policy accept;", prio)
}

// Ruleset is the whole desired content of the table.
type Ruleset struct {
	Counters []string // sorted
	Sets     []*Set   // sorted by name
	Chains   []*Chain // base chains first, then sorted by name
	// Policies are the keys of the policies with chains here, and
	// Isolated the pods with a pod chain, for metrics and logs.
	Policies []string
	Isolated int
}

// String renders the table as `nft list table` would show it (comments,
// no handles), the golden format of the planner tests.
func (rs *Ruleset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", TableName)
	for _, c := range rs.Counters {
		fmt.Fprintf(&b, "\tcounter %s {\n\t}\n", c)
	}
	for _, s := range rs.Sets {
		fmt.Fprintf(&b, "\t%s %s {\n\t\t%s\n", s.keyword(), s.Name, s.typeSpec())
		if els := s.elements(); len(els) > 0 {
			fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(els, ", "))
		}
		b.WriteString("\t}\n")
	}
	for _, c := range rs.Chains {
		fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
		if c.Base {
			fmt.Fprintf(&b, "\t\t%s\n", c.header())
		}
		for i := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s\n", c.Rules[i].String())
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// sortRuleset puts everything in its canonical order.
func sortRuleset(rs *Ruleset) {
	slices.Sort(rs.Counters)
	slices.SortFunc(rs.Sets, func(a, b *Set) int { return strings.Compare(a.Name, b.Name) })
	slices.SortStableFunc(rs.Chains, func(a, b *Chain) int {
		if a.Base != b.Base {
			if a.Base {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	slices.Sort(rs.Policies)
}
