package rules

import (
	"bufio"
	"bytes"
	"slices"
	"strings"
)

// Existing is what a full sync learns from iptables-save about the kernel's
// current tables: which chains exist (to delete stale per-service chains left
// by an earlier run or a lost partial sync) and which hooks are in place (to
// insert only the missing ones inside the same restore transaction).
type Existing struct {
	chains map[string]map[string]bool // table → chain
	hooks  map[Hook][]string          // keyed by Table, From, To only → saved rule lines
}

// ParseSave reads the output of `iptables-save` (any number of tables).
func ParseSave(data []byte) *Existing {
	e := &Existing{chains: map[string]map[string]bool{}, hooks: map[Hook][]string{}}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
		case line[0] == '*':
			table = string(line[1:])
		case line[0] == ':':
			name, _, _ := strings.Cut(string(line[1:]), " ")
			if e.chains[table] == nil {
				e.chains[table] = map[string]bool{}
			}
			e.chains[table][name] = true
		case bytes.HasPrefix(line, []byte("-A ")):
			e.addHook(table, string(line))
		}
	}
	return e
}

func (e *Existing) addHook(table, line string) {
	fields := strings.Fields(line)
	if len(fields) < 4 || !isBuiltin(fields[1]) {
		return
	}
	for i := 2; i+1 < len(fields); i++ {
		if fields[i] == "-j" && IsOwnChain(fields[i+1]) {
			k := Hook{Table: table, From: fields[1], To: fields[i+1]}
			e.hooks[k] = append(e.hooks[k], line)
		}
	}
}

func isBuiltin(chain string) bool {
	switch chain {
	case "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING":
		return true
	}
	return false
}

// HasHook reports whether the jump h is present.
func (e *Existing) HasHook(h Hook) bool {
	return e != nil && len(e.hooks[Hook{Table: h.Table, From: h.From, To: h.To}]) > 0
}

// Chains returns the chains of a table in no particular order.
func (e *Existing) Chains(table string) []string {
	if e == nil {
		return nil
	}
	out := make([]string, 0, len(e.chains[table]))
	for c := range e.chains[table] {
		out = append(out, c)
	}
	return out
}

// Cleanup renders the iptables-restore input that removes everything
// weft-proxy owns: every hook found (deleted by its saved text) and every
// WEFT- top-level or per-service chain (flushed, then deleted). It returns nil
// when there is nothing to remove. Chains of other Weft components are kept.
func Cleanup(e *Existing) []byte {
	var b bytes.Buffer
	for _, table := range []string{TableFilter, TableNAT} {
		var chains, hooks []string
		for _, c := range e.Chains(table) {
			if IsOwnChain(c) {
				chains = append(chains, c)
			}
		}
		for h, lines := range e.hooks {
			if h.Table == table {
				for _, l := range lines {
					hooks = append(hooks, "-D"+strings.TrimPrefix(l, "-A"))
				}
			}
		}
		if len(chains) == 0 && len(hooks) == 0 {
			continue
		}
		slices.Sort(chains)
		slices.Sort(hooks)
		b.WriteString("*" + table + "\n")
		for _, c := range chains {
			b.WriteString(":" + c + " - [0:0]\n")
		}
		for _, h := range hooks {
			b.WriteString(h + "\n")
		}
		for _, c := range chains {
			b.WriteString("-X " + c + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.Bytes()
}
