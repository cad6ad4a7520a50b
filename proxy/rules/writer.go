package rules

import (
	"slices"

	"k8s.io/apimachinery/pkg/types"
)

// writer assembles restore input and remembers which lines came from which
// Service.
type writer struct {
	b                      []byte
	line                   int
	rules, chains, deleted int
	spans                  []span
	// bulk is Config.BulkRules; sec* mark where the current table began.
	bulk                                  int
	secOffset, secLine, secRules, secSpan int
}

func (w *writer) rawLine(s string) {
	w.b = append(w.b, s...)
	w.b = append(w.b, '\n')
	w.line++
}

func (w *writer) raw(rule string) {
	w.rawLine(rule)
	w.rules++
}

func (w *writer) table(t string) {
	w.rawLine("*" + t)
	w.secOffset, w.secLine, w.secRules, w.secSpan = len(w.b), w.line, w.rules, len(w.spans)
}

// commit ends a table section. A large section starts with "-Z": iptables-nft
// (1.8.x) builds a sorted list of every chain a restore names and then
// fetches them one netlink request at a time, which is quadratic in the
// number of chains; a chain-less command makes it fetch all chains in one
// dump instead (the nft backend's only side effect is zeroed counters).
func (w *writer) commit() {
	if w.bulk > 0 && w.rules-w.secRules >= w.bulk {
		w.b = slices.Insert(w.b, w.secOffset, []byte("-Z\n")...)
		w.line++
		for i := w.secSpan; i < len(w.spans); i++ {
			w.spans[i].first++
			w.spans[i].last++
		}
	}
	w.rawLine("COMMIT")
}

// declare writes chain lines; for an existing chain this flushes it.
func (w *writer) declare(chains ...string) {
	for _, c := range chains {
		w.rawLine(":" + c + " - [0:0]")
		w.chains++
	}
}

func (w *writer) delete(chains []string) {
	for _, c := range chains {
		w.rawLine("-X " + c)
		w.deleted++
	}
	w.chains -= len(chains)
}

func (w *writer) piece(name types.NamespacedName, l *lines) {
	if l.n == 0 {
		return
	}
	w.spans = append(w.spans, span{first: w.line + 1, last: w.line + l.n, name: name})
	w.b = append(w.b, l.b...)
	w.line += l.n
	w.rules += l.n
}

func (w *writer) dispatch(d dispatch, order []types.NamespacedName, lookup func(types.NamespacedName) *rendered) {
	for _, name := range order {
		if r := lookup(name); r != nil {
			w.piece(name, &r.dispatch[d])
		}
	}
}

// nodePortsJump must stay the last rule of nat WEFT-SERVICES: any local
// destination not matched by a VIP may be a node port. Loopback is excluded
// (no route_localnet), as kube-proxy does by default.
func (w *writer) nodePortsJump() {
	w.raw("-A " + ServicesChain + ` -m comment --comment "weft service nodeports; must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j ` + NodePortsChain)
}

func (w *writer) hooks(table string, e *Existing) {
	for _, h := range Hooks {
		if h.Table == table && !e.HasHook(h) {
			w.raw("-I " + h.From + " 1 " + h.Rule())
		}
	}
}

func (w *writer) finish(pl *Plan) {
	pl.Data, pl.spans = w.b, w.spans
	pl.RulesWritten, pl.ChainsWritten, pl.ChainsDeleted = w.rules, w.chains, w.deleted
}
