package node

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// MasqChain holds the masquerade rules; POSTROUTING jumps to it. Weft's
// chains start with WEFT- and every rule carries a comment (DESIGN.md).
const MasqChain = "WEFT-CNI-MASQ"

// Rule is one iptables rule as data: table, chain and the rule spec in the
// order iptables -S prints it, so String() compares with what is installed.
type Rule struct {
	Table, Chain string
	Spec         []string
}

// String renders the rule as iptables -S does ("-A CHAIN ..."), quoting
// arguments with spaces the way iptables quotes comments.
func (r Rule) String() string {
	parts := []string{"-A", r.Chain}
	for _, s := range r.Spec {
		if strings.ContainsAny(s, " \t") {
			s = `"` + s + `"`
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// MasqueradeRules are the desired rules: POSTROUTING jumps to MasqChain,
// which masquerades traffic from pods (the cluster CIDR) to anywhere outside
// it, so replies from outside the cluster find their way back to the node.
func MasqueradeRules(clusterCIDR netip.Prefix) (jump Rule, chain []Rule) {
	cidr := clusterCIDR.Masked().String()
	jump = Rule{Table: "nat", Chain: "POSTROUTING", Spec: []string{
		"-m", "comment", "--comment", "weft: masquerade pod traffic leaving the cluster", "-j", MasqChain,
	}}
	chain = []Rule{{Table: "nat", Chain: MasqChain, Spec: []string{
		"-s", cidr, "!", "-d", cidr, "-m", "comment", "--comment", "weft: pods to outside " + cidr, "-j", "MASQUERADE",
	}}}
	return jump, chain
}

// RuleState is what iptables -S shows of our chain and its parent.
type RuleState struct {
	ChainExists bool
	Chain       []string // our chain's lines
	Parent      []string // POSTROUTING's lines
}

// RulePlan is the change that makes RuleState match the desired rules: our
// chain is either left alone or flushed and refilled as a whole.
type RulePlan struct {
	CreateChain bool
	Rewrite     bool
	Rules       []Rule
	InsertJump  bool
	Jump        Rule
}

// Empty says nothing needs doing.
func (p RulePlan) Empty() bool { return !p.CreateChain && !p.Rewrite && !p.InsertJump }

// PlanMasquerade compares desired rules with the current state.
func PlanMasquerade(clusterCIDR netip.Prefix, cur RuleState) RulePlan {
	jump, rules := MasqueradeRules(clusterCIDR)
	want := make([]string, len(rules))
	for i, r := range rules {
		want[i] = r.String()
	}
	return RulePlan{
		CreateChain: !cur.ChainExists,
		Rewrite:     !slices.Equal(appendRules(cur.Chain), want),
		Rules:       rules,
		InsertJump:  !slices.Contains(appendRules(cur.Parent), jump.String()),
		Jump:        jump,
	}
}

// appendRules keeps the "-A" lines of iptables -S output.
func appendRules(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "-A ") {
			out = append(out, l)
		}
	}
	return out
}

// iptablesAPI is the part of go-iptables the agent uses.
type iptablesAPI interface {
	ChainExists(table, chain string) (bool, error)
	List(table, chain string) ([]string, error)
	NewChain(table, chain string) error
	ClearChain(table, chain string) error
	Append(table, chain string, rulespec ...string) error
	Insert(table, chain string, pos int, rulespec ...string) error
	DeleteIfExists(table, chain string, rulespec ...string) error
	ClearAndDeleteChain(table, chain string) error
}

var _ iptablesAPI = (*iptables.IPTables)(nil)

func readRuleState(ipt iptablesAPI) (RuleState, error) {
	var st RuleState
	var err error
	if st.ChainExists, err = ipt.ChainExists("nat", MasqChain); err != nil {
		return st, fmt.Errorf("check chain %s: %w", MasqChain, err)
	}
	if st.ChainExists {
		if st.Chain, err = ipt.List("nat", MasqChain); err != nil {
			return st, fmt.Errorf("list %s: %w", MasqChain, err)
		}
	}
	if st.Parent, err = ipt.List("nat", "POSTROUTING"); err != nil {
		return st, fmt.Errorf("list POSTROUTING: %w", err)
	}
	return st, nil
}

// applyMasquerade makes the masquerade rules match; changed reports whether
// it had to touch iptables. The chain is filled before the jump is added.
func applyMasquerade(ipt iptablesAPI, clusterCIDR netip.Prefix) (changed bool, err error) {
	cur, err := readRuleState(ipt)
	if err != nil {
		return false, err
	}
	plan := PlanMasquerade(clusterCIDR, cur)
	if plan.CreateChain {
		if err := ipt.NewChain("nat", MasqChain); err != nil {
			return true, fmt.Errorf("create chain %s: %w", MasqChain, err)
		}
	}
	if plan.Rewrite {
		if err := ipt.ClearChain("nat", MasqChain); err != nil {
			return true, fmt.Errorf("flush %s: %w", MasqChain, err)
		}
		for _, r := range plan.Rules {
			if err := ipt.Append(r.Table, r.Chain, r.Spec...); err != nil {
				return true, fmt.Errorf("append to %s: %w", r.Chain, err)
			}
		}
	}
	if plan.InsertJump {
		if err := ipt.Insert(plan.Jump.Table, plan.Jump.Chain, 1, plan.Jump.Spec...); err != nil {
			return true, fmt.Errorf("insert jump to %s: %w", MasqChain, err)
		}
	}
	return !plan.Empty(), nil
}

// removeMasquerade deletes the jump and our chain; absent ones are fine.
func removeMasquerade(ipt iptablesAPI, clusterCIDR netip.Prefix) error {
	jump, _ := MasqueradeRules(clusterCIDR)
	cur, err := readRuleState(ipt)
	if err != nil {
		return err
	}
	for _, line := range appendRules(cur.Parent) {
		if line != jump.String() {
			continue
		}
		if err := ipt.DeleteIfExists(jump.Table, jump.Chain, jump.Spec...); err != nil {
			return fmt.Errorf("delete jump to %s: %w", MasqChain, err)
		}
	}
	if !cur.ChainExists {
		return nil
	}
	if err := ipt.ClearAndDeleteChain("nat", MasqChain); err != nil {
		return fmt.Errorf("delete chain %s: %w", MasqChain, err)
	}
	return nil
}
