package rules_test

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/weftmesh/weft/proxy/iptables"
	"github.com/weftmesh/weft/proxy/rules"
)

// tracer follows a packet through the rules in a Fake, in the spirit of
// kube-proxy's packet-flow tests: -m statistic forks (every endpoint that can
// be picked is reported), -m recent --rcheck never matches (no affinity
// history), WEFT-MARK-MASQ sets the masquerade flag.
type tracer struct {
	t      *testing.T
	kernel *iptables.Fake
	local  []netip.Addr // addresses of this node
}

type packet struct {
	proto    string
	src, dst netip.Addr
	dport    int
}

// outcome is where one path of a packet ends: "ip:port" (DNAT), or a
// verdict such as REJECT or DROP; masq says the path marked it for SNAT.
type outcome struct {
	to   string
	masq bool
}

func (tr *tracer) isLocal(a netip.Addr) bool {
	return a.IsLoopback() || slices.Contains(tr.local, a)
}

// chain returns the outcomes of traversing chain; an empty "to" means the
// chain returned without a verdict.
func (tr *tracer) chain(table, name string, p packet, masq bool) []outcome {
	rules, ok := tr.kernel.Rules(table, name)
	if !ok {
		tr.t.Fatalf("jump to missing chain %s/%s", table, name)
	}
	var out []outcome
	for _, r := range rules {
		m, target, args := tr.match(r, p)
		if !m {
			continue
		}
		var here []outcome
		fell := false // some path through a sub-chain came back
		switch target {
		case "":
			continue
		case markMasq:
			masq = true
			continue
		case "RETURN":
			return append(out, outcome{masq: masq})
		case "DNAT":
			here = []outcome{{to: args["--to-destination"], masq: masq}}
		case "REJECT", "DROP", "ACCEPT":
			here = []outcome{{to: target, masq: masq}}
		default:
			for _, o := range tr.chain(table, target, p, masq) {
				if o.to == "" { // returned: keep going in this chain
					fell, masq = true, o.masq
					continue
				}
				here = append(here, o)
			}
		}
		out = append(out, here...)
		if !fell && args["--probability"] == "" {
			return out // a certain match ends this path
		}
	}
	return append(out, outcome{masq: masq})
}

const markMasq = rules.MarkMasqChain

// match evaluates the matches of one rule text; it returns the jump target
// and the options of the rule.
func (tr *tracer) match(rule string, p packet) (bool, string, map[string]string) {
	f := splitRule(rule)
	args := map[string]string{}
	target := ""
	for i := 0; i < len(f); i++ {
		neg := f[i] == "!"
		if neg {
			i++
		}
		opt, val := f[i], ""
		if i+1 < len(f) && !strings.HasPrefix(f[i+1], "-") {
			val = f[i+1]
		}
		ok := true
		switch opt {
		case "-s":
			ok = netip.MustParsePrefix(val).Contains(p.src)
		case "-d":
			ok = netip.MustParsePrefix(val).Contains(p.dst)
		case "-p":
			ok = val == p.proto
		case "--dport":
			ok = val == strconv.Itoa(p.dport)
		case "--dst-type":
			ok = tr.isLocal(p.dst)
		case "--src-type":
			ok = tr.isLocal(p.src)
		case "--rcheck":
			ok = false
		case "-j":
			target = val
		}
		if ok == neg {
			return false, "", nil
		}
		args[opt] = val
	}
	return true, target, args
}

// splitRule splits on spaces, keeping quoted comments whole.
func splitRule(r string) []string {
	var out []string
	for len(r) > 0 {
		r = strings.TrimLeft(r, " ")
		if strings.HasPrefix(r, `"`) {
			end := strings.Index(r[1:], `"`) + 2
			out, r = append(out, r[:end]), r[end:]
			continue
		}
		w, rest, _ := strings.Cut(r, " ")
		out, r = append(out, w), rest
	}
	return out
}

// trace runs a new connection through nat PREROUTING (or OUTPUT for
// locally generated packets) and, when nothing DNATs it, through the filter
// verdict chains.
func (tr *tracer) trace(p packet) string {
	var outs []outcome
	for _, o := range tr.chain("nat", rules.ServicesChain, p, false) {
		if o.to != "" {
			outs = append(outs, o)
		}
	}
	if len(outs) == 0 {
		for _, c := range []string{rules.ServicesChain, rules.ExternalServicesChain, rules.FirewallChain} {
			for _, o := range tr.chain("filter", c, p, false) {
				if o.to != "" {
					outs = append(outs, outcome{to: o.to})
				}
			}
		}
	}
	var parts []string
	for _, o := range outs {
		s := o.to
		if o.masq {
			s += " (masq)"
		}
		parts = append(parts, s)
	}
	slices.Sort(parts)
	parts = slices.Compact(parts)
	if len(parts) == 0 {
		return "no rule"
	}
	return strings.Join(parts, ", ")
}

func TestPacketFlows(t *testing.T) {
	kernel := iptables.NewFake()
	pl := newPlanner().Plan(input(representative().Tracker().Take(), true, nil))
	mustNoErr(t, kernel.Restore(context.Background(), pl.Data))
	tr := &tracer{t: t, kernel: kernel, local: testNodeIPs}

	const (
		pod      = "10.244.0.5"
		outside  = "192.168.7.7"
		node     = "172.20.0.11"
		inRange  = "203.0.113.9"
		webIP    = "10.96.0.10"
		lbIP     = "192.0.2.10"
		external = "198.51.100.5"
	)
	for _, tc := range []struct {
		name, proto, src, dst string
		dport                 int
		want                  string
	}{
		{"cluster IP from a pod", "tcp", pod, webIP, 80, "10.244.1.2:8080, 10.244.2.3:8080, 10.244.3.4:8080"},
		{"cluster IP from off-cluster is masqueraded", "tcp", outside, webIP, 80, "10.244.1.2:8080 (masq), 10.244.2.3:8080 (masq), 10.244.3.4:8080 (masq)"},
		{"hairpin: local endpoint calling its own service", "tcp", "10.244.1.2", webIP, 80, "10.244.1.2:8080 (masq), 10.244.2.3:8080, 10.244.3.4:8080"},
		{"wrong port is not captured", "tcp", pod, webIP, 81, "no rule"},
		{"node port on a node IP", "tcp", outside, node, 30080, "10.244.2.5:8080 (masq), 10.244.3.6:8080 (masq)"},
		{"node port on another port", "tcp", outside, node, 30081, "no rule"},
		{"eTP Local LB IP from an allowed source keeps the client IP", "tcp", inRange, lbIP, 443, "10.244.1.7:8443"},
		{"eTP Local LB IP from a blocked source is dropped", "tcp", outside, lbIP, 443, "DROP"},
		{"LB IP from a pod outside the source ranges is dropped", "tcp", pod, lbIP, 443, "DROP"},
		{"eTP Local node port from a pod is short-circuited to all endpoints", "tcp", pod, node, 30443, "10.244.1.7:8443, 10.244.2.8:8443"},
		{"eTP Local node port uses local endpoints only", "tcp", outside, node, 30443, "10.244.1.7:8443"},
		{"eTP Local node port from the node itself", "tcp", node, node, 30443, "10.244.1.7:8443 (masq), 10.244.2.8:8443 (masq)"},
		{"external IP (UDP)", "udp", outside, external, 53, "10.244.2.9:5353 (masq)"},
		{"external IP, wrong protocol", "tcp", outside, external, 53, "no rule"},
		{"session affinity service", "tcp", pod, "10.96.0.14", 8080, "10.244.2.10:8080, 10.244.3.11:8080"},
		{"iTP Local without local endpoints drops", "tcp", pod, "10.96.0.15", 80, "DROP"},
		{"no endpoints rejects", "tcp", pod, "10.96.0.16", 80, "REJECT"},
		{"no endpoints rejects on the node port", "tcp", outside, node, 30016, "REJECT"},
		{"only terminating endpoints are used as a last resort", "tcp", pod, "10.96.0.17", 80, "10.244.2.13:80"},
		{"SCTP service skipped", "sctp", pod, "10.96.0.18", 9, "no rule"},
		{"multi-port service, UDP port", "udp", pod, "10.96.1.1", 53, "10.244.1.16:53, 10.244.2.17:53"},
		{"multi-port service, TCP port", "tcp", pod, "10.96.1.1", 80, "10.244.1.16:8080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tr.trace(packet{proto: tc.proto, src: netip.MustParseAddr(tc.src), dst: netip.MustParseAddr(tc.dst), dport: tc.dport})
			if got != tc.want {
				t.Errorf("%s %s → %s:%d: got %q, want %q", tc.proto, tc.src, tc.dst, tc.dport, got, tc.want)
			}
		})
	}
}
