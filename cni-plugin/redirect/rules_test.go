package redirect

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftmesh/weft/api/annotation"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got); run go test -update if intended:\n%s", path, diff)
	}
}

// defaultStatus is what the injector writes for a pod without traffic
// annotations.
func defaultStatus() annotation.SidecarStatus {
	return annotation.SidecarStatus{
		Version: annotation.StatusVersion, Image: "weft.local/sidecar:dev", Revision: annotation.DefaultRevision,
		ProxyUID: annotation.ProxyUID, ProxyGID: annotation.ProxyGID,
		OutboundPort: annotation.OutboundCapturePort, InboundPort: annotation.InboundCapturePort,
		IncludeInboundPorts: annotation.CaptureAllInbound,
		ExcludeInboundPorts: annotation.RequiredExcludedInboundPorts(),
	}
}

// planCases are the golden plans; the netns test applies each of them too.
func planCases() map[string]annotation.SidecarStatus {
	tuned := defaultStatus()
	tuned.IncludeInboundPorts = "9080, 8080"
	tuned.ExcludeInboundPorts = []uint16{9000, 15020, 15021, 15090}
	tuned.ExcludeOutboundPorts = []uint16{5432, 6379}
	tuned.ExcludeOutboundCIDRs = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("169.254.169.254/32"),
		netip.MustParsePrefix("fd00::/8"), // IPv6: ignored
	}
	other := defaultStatus() // every value comes from the status
	other.ProxyUID, other.ProxyGID, other.OutboundPort, other.InboundPort = 2000, 3000, 16001, 16006
	none := defaultStatus()
	none.IncludeInboundPorts = ""
	many := defaultStatus()
	for p := range uint16(20) {
		many.ExcludeOutboundPorts = append(many.ExcludeOutboundPorts, 7000+p)
	}
	return map[string]annotation.SidecarStatus{
		"default": defaultStatus(), "tuned": tuned, "other-ids": other,
		"no-inbound-capture": none, "many-ports": many,
	}
}

func TestPlanGolden(t *testing.T) {
	for name, st := range planCases() {
		t.Run(name, func(t *testing.T) {
			p, err := PlanFor(st)
			require.NoError(t, err)
			golden(t, name+".rules", p.SaveText())
		})
	}
}

// TestPlanConventions checks DESIGN.md's rules for every planned rule:
// chains start with WEFT- and fit iptables' 28 characters, every rule
// carries a comment that iptables accepts (at most 256 bytes) and prints
// without escapes (no quotes or backslashes).
func TestPlanConventions(t *testing.T) {
	for name, st := range planCases() {
		p, err := PlanFor(st)
		require.NoError(t, err)
		assert.Equal(t, Chains(), p.Chains, name)
		for _, c := range p.Chains {
			assert.True(t, strings.HasPrefix(c, "WEFT-") && len(c) <= 28, c)
		}
		for _, r := range append(append([]Rule{}, p.Rules...), p.Jumps...) {
			i := indexOf(r.Spec, "--comment")
			require.GreaterOrEqual(t, i, 0, "rule without comment: %s", r)
			text := r.Spec[i+1]
			assert.True(t, strings.HasPrefix(text, "weft: "), r.String())
			assert.LessOrEqual(t, len(text), 256, r.String())
			assert.False(t, strings.ContainsAny(text, `"'\\`), "iptables would escape it: %s", r)
		}
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// TestPlanDefaultSemantics spells out the rules of the default plan that
// the design is about, independent of the golden file's formatting.
func TestPlanDefaultSemantics(t *testing.T) {
	p, err := PlanFor(defaultStatus())
	require.NoError(t, err)
	text := p.SaveText()
	for _, want := range []string{
		`-A PREROUTING -p tcp -m comment --comment "weft: inbound TCP to the sidecar" -j WEFT-INBOUND`,
		`-A OUTPUT -p tcp -m comment --comment "weft: outbound TCP to the sidecar" -j WEFT-OUTPUT`,
		"-A WEFT-INBOUND -p tcp -m multiport --dports 15020,15021,15090 ",
		`-A WEFT-IN-REDIRECT -p tcp -m comment --comment "weft: to the sidecar inbound listener" -j REDIRECT --to-ports 15006`,
		`-A WEFT-REDIRECT -p tcp -m comment --comment "weft: to the sidecar outbound listener" -j REDIRECT --to-ports 15001`,
		"-A WEFT-OUTPUT -s 127.0.0.6/32 -o lo ",
		"-A WEFT-OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 ",
		"-A WEFT-OUTPUT -m owner --uid-owner 1337 ",
		"-A WEFT-OUTPUT -m owner --gid-owner 1337 ",
	} {
		assert.Contains(t, text, want)
	}
	// Order matters in OUTPUT: the passthrough return precedes the
	// sidecar-to-own-pod redirect, which precedes the uid return, and the
	// catch-all redirect is last.
	out := rulesOf(p, OutputChain)
	assert.Contains(t, out[0], "127.0.0.6")
	assert.Contains(t, out[1], "-j WEFT-IN-REDIRECT")
	assert.True(t, strings.HasSuffix(out[len(out)-1], "-j WEFT-REDIRECT"))
	in := rulesOf(p, InboundChain)
	assert.True(t, strings.HasSuffix(in[len(in)-1], "-j WEFT-IN-REDIRECT"), "capture after the exclusions")
}

func rulesOf(p Plan, chain string) []string {
	var out []string
	for _, r := range p.Rules {
		if r.Chain == chain {
			out = append(out, r.String())
		}
	}
	return out
}

func TestPlanRejectsInvalidStatus(t *testing.T) {
	st := defaultStatus()
	st.ExcludeInboundPorts = []uint16{15020}
	_, err := PlanFor(st)
	require.ErrorContains(t, err, "invalid sidecar status: excludeInboundPorts must contain 15021")
	st = defaultStatus()
	st.Version = 2
	_, err = PlanFor(st)
	require.ErrorContains(t, err, "unsupported version 2")
}

func TestSaveQuote(t *testing.T) {
	assert.Equal(t, "weftc", saveQuote("weftc"))
	assert.Equal(t, `"weft: x"`, saveQuote("weft: x"))
	assert.Equal(t, `"a\"b\\c\'d"`, saveQuote(`a"b\c'd`))
	assert.Equal(t, `""`, saveQuote(""))
	for _, s := range []string{"weft: a b", `a"b\c'd`, "plain"} {
		line := Rule{Chain: "C", Spec: []string{"-m", "comment", "--comment", s, "-j", "RETURN"}}.String()
		assert.Equal(t, []string{"-A", "C", "-m", "comment", "--comment", s, "-j", "RETURN"}, splitSaved(line))
	}
}
