package iptables

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Fake is an in-memory iptables with the --noflush restore semantics weft
// relies on: a chain line creates or flushes a chain, -A/-I/-D/-F/-X edit,
// a jump to a missing chain or deleting a non-empty or referenced chain is an
// error, and each table section commits atomically. Tests use it to check
// that a partial sync leaves exactly what a full sync would.
type Fake struct {
	mu     sync.Mutex
	tables map[string]*table
	// FailRestore, when set, is called before each restore; a non-nil
	// result fails the restore without changing anything.
	FailRestore func(data []byte) error
	// RejectLine, when set, is called for every input line; a non-nil
	// result fails the restore at that line, as the kernel rejecting one
	// rule would.
	RejectLine func(line string) error
	// Restores counts successful Restore calls; LastData is the last input.
	Restores int
	LastData []byte
}

type table struct {
	chains map[string][]string // chain → rule texts (after "-A CHAIN ")
}

var builtins = map[string][]string{
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
}

// NewFake returns a Fake holding the empty built-in filter and nat tables.
func NewFake() *Fake {
	f := &Fake{tables: map[string]*table{}}
	for name, chains := range builtins {
		t := &table{chains: map[string][]string{}}
		for _, c := range chains {
			t.chains[c] = nil
		}
		f.tables[name] = t
	}
	return f
}

func (t *table) clone() *table {
	c := &table{chains: make(map[string][]string, len(t.chains))}
	for k, v := range t.chains {
		c.chains[k] = slices.Clone(v)
	}
	return c
}

// Restore implements Interface.
func (f *Fake) Restore(_ context.Context, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.FailRestore != nil {
		if err := f.FailRestore(data); err != nil {
			return &RestoreError{Err: err, Output: err.Error()}
		}
	}
	var cur *table
	var curName string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		var err error
		if f.RejectLine != nil {
			err = f.RejectLine(line)
		}
		switch {
		case err != nil:
		case line == "" || line[0] == '#':
		case line[0] == '*':
			curName = line[1:]
			t, ok := f.tables[curName]
			if !ok {
				err = fmt.Errorf("unknown table %q", curName)
				break
			}
			cur = t.clone()
		case cur == nil:
			err = errors.New("rule outside a table")
		case line == "COMMIT":
			f.tables[curName], cur = cur, nil
		default:
			err = cur.apply(line)
		}
		if err != nil {
			return &RestoreError{Line: n, Err: err, Output: fmt.Sprintf("line %d: %v", n, err)}
		}
	}
	f.Restores++
	f.LastData = slices.Clone(data)
	return nil
}

func (t *table) apply(line string) error {
	if strings.HasPrefix(line, ":") {
		name, policy, _ := strings.Cut(line[1:], " ")
		if _, ok := t.chains[name]; !ok || strings.HasPrefix(policy, "-") {
			t.chains[name] = nil // create, or flush a user chain
		}
		return nil
	}
	op, rest, _ := strings.Cut(line, " ")
	if op == "-Z" && rest == "" {
		return nil // counters are not modelled
	}
	chain, rule, _ := strings.Cut(rest, " ")
	rules, ok := t.chains[chain]
	if !ok {
		return fmt.Errorf("chain %s does not exist", chain)
	}
	switch op {
	case "-A", "-I":
		if target := jumpTarget(rule); target != "" && isUserChainName(target) {
			if _, ok := t.chains[target]; !ok {
				return fmt.Errorf("chain '%s' does not exist", target)
			}
		}
		if op == "-A" {
			t.chains[chain] = append(rules, rule)
			return nil
		}
		pos := 1
		if n, r, ok := strings.Cut(rule, " "); ok {
			if p, err := strconv.Atoi(n); err == nil {
				pos, rule = p, r
			}
		}
		if pos < 1 || pos > len(rules)+1 {
			return fmt.Errorf("index %d out of range", pos)
		}
		t.chains[chain] = slices.Insert(rules, pos-1, rule)
	case "-D":
		i := slices.Index(rules, rule)
		if i < 0 {
			return errors.New("bad rule (does a matching rule exist in that chain?)")
		}
		t.chains[chain] = slices.Delete(rules, i, i+1)
	case "-F":
		t.chains[chain] = nil
	case "-X":
		if len(rules) > 0 {
			return fmt.Errorf("CHAIN_DEL failed (Device or resource busy): chain %s", chain)
		}
		for c, rs := range t.chains {
			for _, r := range rs {
				if jumpTarget(r) == chain {
					return fmt.Errorf("CHAIN_DEL failed (Device or resource busy): chain %s referenced by %s", chain, c)
				}
			}
		}
		delete(t.chains, chain)
	default:
		return fmt.Errorf("unknown command %q", op)
	}
	return nil
}

func jumpTarget(rule string) string {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" {
			return f[i+1]
		}
	}
	return ""
}

// isUserChainName tells chains from targets (DNAT, MASQUERADE, …), which
// are upper-case words without a dash.
func isUserChainName(s string) bool { return strings.Contains(s, "-") }

// Save implements Interface, printing tables in a stable order: built-in
// chains first, then user chains by name.
func (f *Fake) Save(context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b bytes.Buffer
	for _, name := range slices.Sorted(maps.Keys(f.tables)) {
		t := f.tables[name]
		b.WriteString("*" + name + "\n")
		chains := slices.Clone(builtins[name])
		var user []string
		for c := range t.chains {
			if !slices.Contains(chains, c) {
				user = append(user, c)
			}
		}
		slices.Sort(user)
		for _, c := range chains {
			b.WriteString(":" + c + " ACCEPT [0:0]\n")
		}
		for _, c := range user {
			b.WriteString(":" + c + " - [0:0]\n")
		}
		for _, c := range append(chains, user...) {
			for _, r := range t.chains[c] {
				b.WriteString("-A " + c + " " + r + "\n")
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.Bytes(), nil
}

// ChainExists implements Interface.
func (f *Fake) ChainExists(_ context.Context, table, chain string) (bool, error) {
	_, ok := f.Rules(table, chain)
	return ok, nil
}

// Rules returns a copy of one chain's rules (the text after "-A CHAIN "), or
// nil and false when the chain does not exist.
func (f *Fake) Rules(tableName, chain string) ([]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tables[tableName]
	if !ok {
		return nil, false
	}
	r, ok := t.chains[chain]
	return slices.Clone(r), ok
}
