package netpol

import (
	"fmt"
	"slices"
	"strings"
)

// OpKind is one nftables command.
type OpKind uint8

// The commands a Change is made of, in nft script terms.
const (
	OpAddTable OpKind = iota
	OpAddCounter
	OpDelCounter
	OpAddSet
	OpDelSet
	OpFlushSet
	OpAddElements
	OpDelElements
	OpAddChain
	OpFlushChain
	OpDelChain
	OpAddRule
)

// Op is one command. Set carries the set (AddSet, DelSet, FlushSet) or the
// elements to add or delete; Chain the chain (AddChain) or the chain a rule
// goes to; Name the counter or the chain to flush or delete.
type Op struct {
	Kind  OpKind
	Name  string
	Set   *Set
	Chain *Chain
	Rule  *Rule
}

// Change is what one sync writes, in order, as one transaction.
type Change struct {
	Full bool
	Ops  []Op
	// Rules and Elements count what is written, for logs and metrics.
	Rules, Elements int
}

// Empty says the kernel already matches.
func (c *Change) Empty() bool { return len(c.Ops) == 0 }

// Existing names what the table holds, read before a full sync.
type Existing struct {
	Table    bool
	Chains   []ExistingChain
	Sets     []*Set // name and type only
	Counters []string
}

// ExistingChain is a chain of the table as the kernel reports it.
type ExistingChain struct {
	Name     string
	Base     bool
	Priority int
}

// FullChange rewrites the table from scratch in one transaction: every
// chain is flushed and every set deleted (so nothing references anything),
// then everything desired is added. Only the drop counters survive, so
// their values are kept across resyncs and restarts.
func FullChange(want *Ruleset, have Existing) *Change {
	c := &Change{Full: true}
	c.add(Op{Kind: OpAddTable})
	wantChain := map[string]*Chain{}
	for _, ch := range want.Chains {
		wantChain[ch.Name] = ch
	}
	for _, ch := range have.Chains {
		c.add(Op{Kind: OpFlushChain, Name: ch.Name})
	}
	for _, s := range have.Sets {
		c.add(Op{Kind: OpDelSet, Set: s})
	}
	for _, ch := range have.Chains {
		if w, ok := wantChain[ch.Name]; !ok || w.Base != ch.Base || w.Priority != ch.Priority {
			c.add(Op{Kind: OpDelChain, Name: ch.Name})
		}
	}
	c.addCounters(want.Counters, have.Counters, true)
	for _, s := range want.Sets {
		c.add(Op{Kind: OpAddSet, Set: s})
	}
	for _, ch := range want.Chains {
		c.add(Op{Kind: OpAddChain, Chain: ch})
	}
	for _, s := range want.Sets {
		c.addElements(OpAddElements, s)
	}
	for _, ch := range want.Chains {
		c.addRules(ch)
	}
	return c
}

// PartialChange writes only what differs between the ruleset last written
// (have) and want: new objects first, then changed set elements and
// chains (a changed chain is flushed and refilled), then stale chains,
// sets and counters, once nothing refers to them any more.
func PartialChange(want, have *Ruleset) *Change {
	c := &Change{}
	haveSet, haveChain := map[string]*Set{}, map[string]*Chain{}
	for _, s := range have.Sets {
		haveSet[s.Name] = s
	}
	for _, ch := range have.Chains {
		haveChain[ch.Name] = ch
	}
	c.addCounters(want.Counters, have.Counters, false)
	for _, s := range want.Sets {
		if haveSet[s.Name] == nil {
			c.add(Op{Kind: OpAddSet, Set: s})
		}
	}
	for _, ch := range want.Chains {
		if haveChain[ch.Name] == nil {
			c.add(Op{Kind: OpAddChain, Chain: ch})
		}
	}
	for _, s := range want.Sets {
		c.updateSet(s, haveSet[s.Name])
	}
	for _, ch := range want.Chains {
		old := haveChain[ch.Name]
		switch {
		case old == nil:
			c.addRules(ch)
		case !slices.Equal(old.Rules, ch.Rules):
			c.add(Op{Kind: OpFlushChain, Name: ch.Name})
			c.addRules(ch)
		}
	}
	stale := staleChains(want, have)
	for _, name := range stale {
		c.add(Op{Kind: OpFlushChain, Name: name})
	}
	for _, name := range stale {
		c.add(Op{Kind: OpDelChain, Name: name})
	}
	wantSet := map[string]bool{}
	for _, s := range want.Sets {
		wantSet[s.Name] = true
	}
	for _, s := range have.Sets {
		if !wantSet[s.Name] {
			c.add(Op{Kind: OpDelSet, Set: s})
		}
	}
	for _, name := range minus(have.Counters, want.Counters) {
		c.add(Op{Kind: OpDelCounter, Name: name})
	}
	return c
}

func (c *Change) add(op Op) { c.Ops = append(c.Ops, op) }

// addCounters adds the wanted counters have lacks (all of them in a full
// sync: adding an existing counter object keeps its value).
func (c *Change) addCounters(want, have []string, full bool) {
	add := minus(want, have)
	if full {
		add = want
	}
	for _, name := range add {
		c.add(Op{Kind: OpAddCounter, Name: name})
	}
	if full {
		for _, name := range minus(have, want) {
			c.add(Op{Kind: OpDelCounter, Name: name})
		}
	}
}

func (c *Change) addElements(kind OpKind, s *Set) {
	if s.Len() == 0 {
		return
	}
	c.Elements += s.Len()
	c.add(Op{Kind: kind, Set: s})
}

func (c *Change) addRules(ch *Chain) {
	for i := range ch.Rules {
		c.Rules++
		c.add(Op{Kind: OpAddRule, Chain: ch, Rule: &ch.Rules[i]})
	}
}

// updateSet brings a set's elements from old to s. Interval sets are
// flushed and refilled (nft would have to split deleted intervals);
// exact sets get their difference.
func (c *Change) updateSet(s, old *Set) {
	switch {
	case old == nil:
		c.addElements(OpAddElements, s)
	case s.Type == AddrSet:
		if !slices.Equal(s.Addrs, old.Addrs) {
			c.add(Op{Kind: OpFlushSet, Set: s})
			c.addElements(OpAddElements, s)
		}
	case s.Type == PortSet:
		del, add := diffSorted(old.Ports, s.Ports, compareAddrPort)
		c.addElements(OpDelElements, &Set{Name: s.Name, Type: s.Type, Ports: del})
		c.addElements(OpAddElements, &Set{Name: s.Name, Type: s.Type, Ports: add})
	case s.Type == VerdictMap:
		cmpJump := func(a, b Jump) int {
			if n := a.Addr.Compare(b.Addr); n != 0 {
				return n
			}
			return strings.Compare(a.Chain, b.Chain)
		}
		del, add := diffSorted(old.Jumps, s.Jumps, cmpJump)
		c.addElements(OpDelElements, &Set{Name: s.Name, Type: s.Type, Jumps: del})
		c.addElements(OpAddElements, &Set{Name: s.Name, Type: s.Type, Jumps: add})
	}
}

// diffSorted returns what only old has and what only cur has; both are
// sorted by cmp.
func diffSorted[T any](old, cur []T, cmp func(a, b T) int) (del, add []T) {
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		switch {
		case j == len(cur) || (i < len(old) && cmp(old[i], cur[j]) < 0):
			del = append(del, old[i])
			i++
		case i == len(old) || cmp(old[i], cur[j]) > 0:
			add = append(add, cur[j])
			j++
		default:
			i++
			j++
		}
	}
	return del, add
}

func staleChains(want, have *Ruleset) []string {
	keep := map[string]bool{}
	for _, ch := range want.Chains {
		keep[ch.Name] = true
	}
	var out []string
	for _, ch := range have.Chains {
		if !keep[ch.Name] {
			out = append(out, ch.Name)
		}
	}
	return out
}

// minus lists the elements of a not in b, in a's order.
func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, s := range b {
		in[s] = true
	}
	var out []string
	for _, s := range a {
		if !in[s] {
			out = append(out, s)
		}
	}
	return out
}

// String renders the change as an nft script (`nft -f` runs it as one
// transaction, like the netlink batch): the golden format of partial
// syncs and the reference the kernel tests compare the netlink encoding
// against.
func (c *Change) String() string {
	var b strings.Builder
	t := "inet " + TableName
	for _, op := range c.Ops {
		switch op.Kind {
		case OpAddTable:
			fmt.Fprintf(&b, "add table %s\n", t)
		case OpAddCounter:
			fmt.Fprintf(&b, "add counter %s %s\n", t, op.Name)
		case OpDelCounter:
			fmt.Fprintf(&b, "delete counter %s %s\n", t, op.Name)
		case OpAddSet:
			fmt.Fprintf(&b, "add %s %s %s { %s }\n", op.Set.keyword(), t, op.Set.Name, op.Set.typeSpec())
		case OpDelSet:
			fmt.Fprintf(&b, "delete %s %s %s\n", op.Set.keyword(), t, op.Set.Name)
		case OpFlushSet:
			fmt.Fprintf(&b, "flush %s %s %s\n", op.Set.keyword(), t, op.Set.Name)
		case OpAddElements, OpDelElements:
			verb := "add"
			if op.Kind == OpDelElements {
				verb = "delete"
			}
			fmt.Fprintf(&b, "%s element %s %s { %s }\n", verb, t, op.Set.Name, strings.Join(op.Set.elements(), ", "))
		case OpAddChain:
			if op.Chain.Base {
				fmt.Fprintf(&b, "add chain %s %s { %s }\n", t, op.Chain.Name, op.Chain.header())
			} else {
				fmt.Fprintf(&b, "add chain %s %s\n", t, op.Chain.Name)
			}
		case OpFlushChain:
			fmt.Fprintf(&b, "flush chain %s %s\n", t, op.Name)
		case OpDelChain:
			fmt.Fprintf(&b, "delete chain %s %s\n", t, op.Name)
		case OpAddRule:
			fmt.Fprintf(&b, "add rule %s %s %s\n", t, op.Chain.Name, op.Rule.String())
		}
	}
	return b.String()
}
