package node

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

var clusterCIDR = netip.MustParsePrefix("10.244.0.0/16")

func TestMasqueradeRulesGolden(t *testing.T) {
	jump, rules := MasqueradeRules(clusterCIDR)
	lines := []string{"# table nat", jump.String()}
	for _, r := range rules {
		lines = append(lines, r.String())
	}
	golden(t, "masquerade.rules", []byte(strings.Join(lines, "\n")+"\n"))
	for _, r := range append(rules, jump) {
		assert.Contains(t, r.Spec, "comment", "every rule carries a comment")
	}
}

func TestPlanMasquerade(t *testing.T) {
	jump, rules := MasqueradeRules(clusterCIDR)
	synced := RuleState{
		ChainExists: true,
		Chain:       []string{"-N WEFT-CNI-MASQ", rules[0].String()},
		Parent:      []string{"-P POSTROUTING ACCEPT", jump.String(), "-A POSTROUTING -j KUBE-POSTROUTING"},
	}
	stale := synced
	stale.Chain = []string{"-N WEFT-CNI-MASQ", strings.ReplaceAll(rules[0].String(), "10.244.0.0/16", "10.200.0.0/16")}
	extra := synced
	extra.Chain = append(append([]string{}, synced.Chain...), "-A WEFT-CNI-MASQ -j RETURN")
	noJump := synced
	noJump.Parent = []string{"-P POSTROUTING ACCEPT", "-A POSTROUTING -j KUBE-POSTROUTING"}

	tests := map[string]struct {
		state RuleState
		want  RulePlan
	}{
		"nothing yet":   {RuleState{Parent: []string{"-P POSTROUTING ACCEPT"}}, RulePlan{CreateChain: true, Rewrite: true, InsertJump: true}},
		"in sync":       {synced, RulePlan{}},
		"old cidr":      {stale, RulePlan{Rewrite: true}},
		"foreign rule":  {extra, RulePlan{Rewrite: true}},
		"jump deleted":  {noJump, RulePlan{InsertJump: true}},
		"chain flushed": {RuleState{ChainExists: true, Chain: []string{"-N WEFT-CNI-MASQ"}, Parent: synced.Parent}, RulePlan{Rewrite: true}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := PlanMasquerade(clusterCIDR, tt.state)
			tt.want.Rules, tt.want.Jump = rules, jump
			assert.Equal(t, tt.want, got)
			assert.Equal(t, name == "in sync", got.Empty())
		})
	}
}
