// Package redirect plans and applies the iptables rules that send a meshed
// pod's TCP traffic through its sidecar: inbound connections to Envoy's
// inbound listener (15006), outbound connections to its outbound listener
// (15001), except the sidecar's own traffic (UID/GID 1337). It follows the
// model of Istio's istio-iptables (nat table, REDIRECT targets), reduced to
// the rules that can ever match and with each rule's reason in its comment.
//
// Planning is pure: PlanFor turns an annotation.SidecarStatus into a Plan,
// plain data that the golden tests pin as iptables-save text. Apply carries
// a Plan out through the IPTables interface (go-iptables in production) in
// the pod's network namespace; the caller enters the namespace.
//
// IPv4 only: Weft's pod network gives pods IPv4 addresses alone
// (weft-bridge), so no ip6tables rules are planned and IPv6 entries of
// ExcludeOutboundCIDRs are ignored. Only TCP is captured; UDP (DNS on
// 15053) is not redirected.
package redirect

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/weftmesh/weft/api/annotation"
)

// Table is the iptables table of every rule: REDIRECT is a nat target.
const Table = "nat"

// Weft's chains in the pod's nat table (DESIGN.md: chains start with WEFT-).
const (
	// InboundChain decides which connections arriving at the pod
	// (PREROUTING) go to the sidecar.
	InboundChain = "WEFT-INBOUND"
	// InboundRedirectChain redirects to Envoy's inbound listener; both
	// InboundChain and OutputChain (the sidecar calling its own pod) use it.
	InboundRedirectChain = "WEFT-IN-REDIRECT"
	// OutputChain decides which connections opened inside the pod
	// (OUTPUT) go to the sidecar.
	OutputChain = "WEFT-OUTPUT"
	// RedirectChain redirects to Envoy's outbound listener.
	RedirectChain = "WEFT-REDIRECT"
)

// InboundPassthroughSource is the source address Envoy's inbound listener
// binds when it forwards a connection to the app (Istio's 127.0.0.6). The
// sidecar's rewritten probes must use it too: a connection from the sidecar
// UID to the pod's own IP is otherwise sent to the inbound listener.
const InboundPassthroughSource = "127.0.0.6/32"

// maxMultiport is the most ports one -m multiport match accepts.
const maxMultiport = 15

// Rule is one rule of the nat table as data. Spec is in the order
// iptables-save prints it (addresses, interfaces, protocol, matches,
// target), so String is byte-identical to iptables-save's line.
type Rule struct {
	Chain string
	Spec  []string
}

// String renders the rule as iptables-save does: "-A CHAIN spec…", the
// comment quoted exactly when iptables quotes it.
func (r Rule) String() string {
	parts := []string{"-A", r.Chain}
	for i, s := range r.Spec {
		if i > 0 && r.Spec[i-1] == "--comment" {
			s = saveQuote(s)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// saveQuote is iptables' xtables_save_string: a string of letters, digits,
// underscores and dashes only is printed bare, anything else in double
// quotes with double quotes, backslashes and single quotes escaped.
func saveQuote(s string) string {
	bare := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0
	if bare {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		if c == '"' || c == '\\' || c == '\'' {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	b.WriteByte('"')
	return b.String()
}

// Plan is the complete rule set of one pod: Weft's chains, their rules
// (grouped by chain, chains in Chains order) and the jumps that hook them
// into the built-in chains.
type Plan struct {
	// Chains are created (or flushed) first, in iptables-save order.
	Chains []string
	// Rules fill Chains, appended in order.
	Rules []Rule
	// Jumps go into PREROUTING and OUTPUT once, after Rules, so traffic
	// never meets a half-filled chain.
	Jumps []Rule
}

// Chains lists Weft's chains in the order iptables-save prints them
// (sorted by name). Every plan has all of them, whatever the status says,
// so a checker can verify any meshed pod without its status.
func Chains() []string {
	return []string{InboundRedirectChain, InboundChain, OutputChain, RedirectChain}
}

// Jumps are the rules hooking Weft's chains into the built-in ones: TCP
// arriving at the pod (PREROUTING) and TCP opened inside it (OUTPUT).
// Local connections pass nat OUTPUT only: NAT is decided on a connection's
// first packet, so its loopback delivery skips PREROUTING.
func Jumps() []Rule {
	return []Rule{
		{Chain: "PREROUTING", Spec: tcp(comment("weft: inbound TCP to the sidecar", "-j", InboundChain))},
		{Chain: "OUTPUT", Spec: tcp(comment("weft: outbound TCP to the sidecar", "-j", OutputChain))},
	}
}

// PlanFor derives a pod's rules from its sidecar status alone (the CNI
// plugin sees nothing else of the pod). The status is validated first, so
// a status a reader does not fully understand programs nothing.
func PlanFor(st annotation.SidecarStatus) (Plan, error) {
	if err := st.Validate(); err != nil {
		return Plan{}, fmt.Errorf("invalid sidecar status: %w", err)
	}
	inbound, err := inboundRules(st)
	if err != nil {
		return Plan{}, err
	}
	var rules []Rule
	rules = append(rules, Rule{Chain: InboundRedirectChain, Spec: tcp(comment(
		"weft: to the sidecar inbound listener", "-j", "REDIRECT", "--to-ports", port(st.InboundPort)))})
	rules = append(rules, inbound...)
	rules = append(rules, outputRules(st)...)
	rules = append(rules, Rule{Chain: RedirectChain, Spec: tcp(comment(
		"weft: to the sidecar outbound listener", "-j", "REDIRECT", "--to-ports", port(st.OutboundPort)))})
	return Plan{Chains: Chains(), Rules: rules, Jumps: Jumps()}, nil
}

// inboundRules fill InboundChain. Excluded ports return first: the
// sidecar's own ports (agent 15020, health 15021, stats 15090) are reached
// directly by the kubelet and Prometheus, and the user's exclusions bypass
// Envoy by request. Then the captured ports ("*": every TCP port) go to
// the inbound listener; anything else returns and reaches the app as is.
func inboundRules(st annotation.SidecarStatus) ([]Rule, error) {
	own, user := splitPorts(st.ExcludeInboundPorts, annotation.RequiredExcludedInboundPorts())
	var rules []Rule
	for _, ps := range chunk(own) {
		rules = append(rules, Rule{Chain: InboundChain, Spec: tcp(multiport(ps, comment(
			"weft: sidecar ports (agent, health, stats) are served directly", "-j", "RETURN")))})
	}
	for _, ps := range chunk(user) {
		rules = append(rules, Rule{Chain: InboundChain, Spec: tcp(multiport(ps, comment(
			"weft: inbound ports excluded by "+annotation.ExcludeInboundPortsAnnotation, "-j", "RETURN")))})
	}
	all, include, err := st.InboundCapture()
	if err != nil {
		return nil, fmt.Errorf("invalid sidecar status: %w", err)
	}
	if all {
		rules = append(rules, Rule{Chain: InboundChain, Spec: tcp(comment(
			"weft: all other inbound TCP to the inbound listener", "-j", InboundRedirectChain))})
	}
	for _, ps := range chunk(include) {
		rules = append(rules, Rule{Chain: InboundChain, Spec: tcp(multiport(ps, comment(
			"weft: captured inbound ports to the inbound listener", "-j", InboundRedirectChain)))})
	}
	return rules, nil
}

// outputRules fill OutputChain, in Istio's order. Of Istio's rules, the
// GID twins of the loopback rules are left out: a GID-1337 process with
// another UID is already matched by the "app over loopback" rule, so they
// never match, and "-d 127.0.0.1/32 -j RETURN" is covered the same way
// (the sidecar's own traffic to 127.0.0.1 returns by UID).
func outputRules(st annotation.SidecarStatus) []Rule {
	uid, gid := strconv.FormatInt(st.ProxyUID, 10), strconv.FormatInt(st.ProxyGID, 10)
	rules := []Rule{
		// Envoy forwards accepted inbound connections to the app at the
		// pod IP from 127.0.0.6; the next rule would send them back to
		// the inbound listener, a loop.
		{Chain: OutputChain, Spec: []string{"-s", InboundPassthroughSource, "-o", "lo",
			"-m", "comment", "--comment", "weft: the sidecar forwarding inbound traffic to the app", "-j", "RETURN"}},
		// Envoy's outbound listener chose this very pod as the endpoint
		// (the app calling its own Service): the connection goes to the
		// inbound listener, so inbound policy and mTLS apply as for any
		// other client.
		{Chain: OutputChain, Spec: []string{"!", "-d", "127.0.0.1/32", "-o", "lo", "-m", "owner", "--uid-owner", uid,
			"-m", "comment", "--comment", "weft: the sidecar calling its own pod goes to the inbound listener", "-j", InboundRedirectChain}},
		// The app talking to itself (localhost or its own pod IP, all
		// routed over lo) stays local, as without a sidecar.
		{Chain: OutputChain, Spec: []string{"-o", "lo", "-m", "owner", "!", "--uid-owner", uid,
			"-m", "comment", "--comment", "weft: app traffic to localhost or its own pod IP stays local", "-j", "RETURN"}},
		// The sidecar's own connections (Envoy upstreams, weft-agent to
		// pilot) must leave as they are, or Envoy would loop to itself.
		{Chain: OutputChain, Spec: []string{"-m", "owner", "--uid-owner", uid,
			"-m", "comment", "--comment", "weft: traffic of the sidecar uid leaves as is", "-j", "RETURN"}},
		{Chain: OutputChain, Spec: []string{"-m", "owner", "--gid-owner", gid,
			"-m", "comment", "--comment", "weft: traffic of the sidecar gid leaves as is", "-j", "RETURN"}},
	}
	for _, ps := range chunk(st.ExcludeOutboundPorts) {
		rules = append(rules, Rule{Chain: OutputChain, Spec: tcp(multiport(ps, comment(
			"weft: outbound ports excluded by "+annotation.ExcludeOutboundPortsAnnotation, "-j", "RETURN")))})
	}
	for _, c := range st.ExcludeOutboundCIDRs {
		if !c.Addr().Is4() {
			continue // IPv4 only, see the package doc
		}
		rules = append(rules, Rule{Chain: OutputChain, Spec: []string{"-d", c.Masked().String(),
			"-m", "comment", "--comment", "weft: outbound range excluded by " + annotation.ExcludeOutboundIPRangesAnnotation, "-j", "RETURN"}})
	}
	return append(rules, Rule{Chain: OutputChain, Spec: tcp(comment(
		"weft: all other outbound TCP to the outbound listener", "-j", RedirectChain))})
}

// SaveText is what `iptables-save -t nat` prints for a fresh pod network
// namespace once the plan is applied, without its "#" lines: the golden
// form of a plan, and what the netns tests compare the kernel's state with.
func (p Plan) SaveText() string {
	var b strings.Builder
	b.WriteString("*nat\n")
	for _, c := range []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"} {
		fmt.Fprintf(&b, ":%s ACCEPT [0:0]\n", c)
	}
	for _, c := range p.Chains {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	for _, r := range p.Jumps {
		b.WriteString(r.String() + "\n")
	}
	for _, r := range p.Rules {
		b.WriteString(r.String() + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

func tcp(rest []string) []string { return append([]string{"-p", "tcp"}, rest...) }

func comment(text string, target ...string) []string {
	return append([]string{"-m", "comment", "--comment", text}, target...)
}

func multiport(ports []uint16, rest []string) []string {
	list := make([]string, len(ports))
	for i, p := range ports {
		list[i] = port(p)
	}
	return append([]string{"-m", "multiport", "--dports", strings.Join(list, ",")}, rest...)
}

func port(p uint16) string { return strconv.Itoa(int(p)) }

// splitPorts separates ports into those in special and the rest, each
// sorted.
func splitPorts(ports, special []uint16) (in, out []uint16) {
	for _, p := range ports {
		if slices.Contains(special, p) {
			in = append(in, p)
		} else {
			out = append(out, p)
		}
	}
	slices.Sort(in)
	slices.Sort(out)
	return slices.Compact(in), slices.Compact(out)
}

// chunk cuts a port list into multiport-sized pieces.
func chunk(ports []uint16) [][]uint16 {
	return slices.Collect(slices.Chunk(ports, maxMultiport))
}
