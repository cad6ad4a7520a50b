package redirect

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// IPTables is the part of go-iptables that Apply, Remove and Missing use.
// It is an interface so the order of operations is testable without root;
// the caller hands in an *iptables.IPTables created inside the pod's
// network namespace (iptables runs as a child of the calling thread).
type IPTables interface {
	ClearChain(table, chain string) error
	DeleteChain(table, chain string) error
	ListChains(table string) ([]string, error)
	List(table, chain string) ([]string, error)
	Exists(table, chain string, rulespec ...string) (bool, error)
	Append(table, chain string, rulespec ...string) error
	DeleteIfExists(table, chain string, rulespec ...string) error
}

var _ IPTables = (*iptables.IPTables)(nil)

// Apply makes the pod's nat table hold exactly p's rules in Weft's chains:
// it creates or flushes each chain, appends the rules, then adds each jump
// unless it is already there. Applying a plan twice leaves the same rules
// as applying it once.
func Apply(ipt IPTables, p Plan) error {
	for _, c := range p.Chains {
		if err := ipt.ClearChain(Table, c); err != nil {
			return fmt.Errorf("create or flush chain %s: %w", c, err)
		}
	}
	for _, r := range p.Rules {
		if err := ipt.Append(Table, r.Chain, r.Spec...); err != nil {
			return fmt.Errorf("append %q: %w", r.String(), err)
		}
	}
	for _, j := range p.Jumps {
		ok, err := ipt.Exists(Table, j.Chain, j.Spec...)
		if err != nil {
			return fmt.Errorf("check %q: %w", j.String(), err)
		}
		if ok {
			continue
		}
		if err := ipt.Append(Table, j.Chain, j.Spec...); err != nil {
			return fmt.Errorf("append %q: %w", j.String(), err)
		}
	}
	return nil
}

// Remove deletes every jump to Weft's chains and the chains themselves,
// whatever their rules: it is how a failed ADD leaves the namespace as it
// found it. What is already gone is fine.
func Remove(ipt IPTables) error {
	existing, err := ipt.ListChains(Table)
	if err != nil {
		return fmt.Errorf("list chains: %w", err)
	}
	var errs []error
	for _, parent := range []string{"PREROUTING", "OUTPUT"} {
		lines, err := ipt.List(Table, parent)
		if err != nil {
			errs = append(errs, fmt.Errorf("list %s: %w", parent, err))
			continue
		}
		for _, spec := range jumpsToOurs(lines) {
			if err := ipt.DeleteIfExists(Table, parent, spec...); err != nil {
				errs = append(errs, fmt.Errorf("delete jump in %s: %w", parent, err))
			}
		}
	}
	ours := slices.DeleteFunc(Chains(), func(c string) bool { return !slices.Contains(existing, c) })
	// Flush all before deleting any: our chains jump to each other, and a
	// chain that is still a target cannot be deleted.
	for _, c := range ours {
		if err := ipt.ClearChain(Table, c); err != nil {
			errs = append(errs, fmt.Errorf("flush chain %s: %w", c, err))
		}
	}
	for _, c := range ours {
		if err := ipt.DeleteChain(Table, c); err != nil {
			errs = append(errs, fmt.Errorf("delete chain %s: %w", c, err))
		}
	}
	return errors.Join(errs...)
}

// Missing reports which of Weft's chains and jumps a pod's nat table lacks
// (nil: all there). It checks presence, not content: rules that differ
// from today's plan are most likely an older Weft's, still capturing.
func Missing(ipt IPTables) ([]string, error) {
	existing, err := ipt.ListChains(Table)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	var missing []string
	for _, c := range Chains() {
		if !slices.Contains(existing, c) {
			missing = append(missing, "chain "+c)
		}
	}
	for _, j := range Jumps() {
		lines, err := ipt.List(Table, j.Chain)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", j.Chain, err)
		}
		target := j.Spec[len(j.Spec)-1]
		if len(jumpsTo(lines, target)) == 0 {
			missing = append(missing, "jump "+j.Chain+" -> "+target)
		}
	}
	return missing, nil
}

// jumpsToOurs returns the specs (as -S prints them, split into arguments)
// of the rules in lines that jump to one of Weft's chains.
func jumpsToOurs(lines []string) [][]string {
	var specs [][]string
	for _, c := range Chains() {
		specs = append(specs, jumpsTo(lines, c)...)
	}
	return specs
}

// jumpsTo picks the "-A" lines of iptables -S output whose target is
// chain and returns their rule specs. Our jumps carry comments with spaces,
// so the line is split respecting double quotes.
func jumpsTo(lines []string, chain string) [][]string {
	var specs [][]string
	for _, l := range lines {
		if !strings.HasPrefix(l, "-A ") || !strings.HasSuffix(l, " -j "+chain) {
			continue
		}
		args := splitSaved(l)
		specs = append(specs, args[2:])
	}
	return specs
}

// splitSaved splits an iptables -S line into arguments, undoing
// saveQuote's quoting.
func splitSaved(line string) []string {
	var args []string
	var cur strings.Builder
	quoted, escaped, inArg := false, false, false
	for _, c := range line {
		switch {
		case escaped:
			cur.WriteRune(c)
			escaped = false
		case c == '\\' && quoted:
			escaped = true
		case c == '"':
			quoted, inArg = !quoted, true
		case c == ' ' && !quoted:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(c)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}
