package rules

import (
	"bytes"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/types"

	"github.com/weftmesh/weft/proxy/model"
)

// DefaultMasqueradeMark is kube-proxy's SNAT mark bit (bit 14), kept so that
// node-level tooling that knows kube-proxy's mark keeps working.
const DefaultMasqueradeMark = "0x4000"

// Config holds the cluster-level settings the rules depend on.
type Config struct {
	// ClusterCIDR is the pod network: cluster-IP traffic from outside it is
	// masqueraded so replies come back through this node.
	ClusterCIDR netip.Prefix
	// MasqueradeMark is the mark bit that asks WEFT-POSTROUTING for SNAT.
	MasqueradeMark string
	// BulkRules, when positive, is the number of rules from which a table
	// section starts with "-Z" to keep iptables-nft linear (see
	// writer.commit); 0 disables it (legacy backend, small clusters).
	BulkRules int
}

// Planner renders restore input and remembers, between syncs, what every
// Service contributed, so a partial sync re-renders only changed Services
// and rewrites a dispatch chain only when its content changed. A Plan becomes
// the Planner's truth only through Commit, after the kernel accepted it.
type Planner struct {
	cfg   Config
	r     renderer
	cache map[types.NamespacedName]*rendered
	order []types.NamespacedName // sorted keys of cache
	valid bool                   // cache matches the kernel
	total Totals
}

// NewPlanner returns a Planner whose first Plan is a full one.
func NewPlanner(cfg Config) *Planner {
	if cfg.MasqueradeMark == "" {
		cfg.MasqueradeMark = DefaultMasqueradeMark
	}
	return &Planner{cfg: cfg, r: renderer{clusterCIDR: cfg.ClusterCIDR.String()}}
}

// Input is the state one sync programs.
type Input struct {
	// Services is the complete state; the Planner does not modify it.
	Services map[types.NamespacedName]*model.Service
	// Changed names the Services that may differ from the last committed
	// Plan; it is ignored by full plans.
	Changed []types.NamespacedName
	// Full asks for a complete rewrite (start-up, periodic resync, after a
	// failure, node address change). A Planner without a committed Plan
	// always plans fully.
	Full bool
	// NodeIPs are this node's addresses (for load-balancer source ranges).
	NodeIPs []netip.Addr
	// Existing is the kernel state from iptables-save; full plans use it to
	// add missing hooks and delete stale chains. Nil means "nothing exists".
	Existing *Existing
}

// Totals counts weft-proxy's rules and chains in the kernel once a Plan is
// applied.
type Totals struct {
	NATRules, FilterRules, NATChains int
}

// Plan is the restore input of one sync and the state to remember once the
// kernel accepted it.
type Plan struct {
	// Data is the iptables-restore --noflush input; empty when nothing
	// changed.
	Data []byte
	Full bool
	// RulesWritten and ChainsWritten count what Data rewrites;
	// ChainsDeleted the stale chains it removes.
	RulesWritten, ChainsWritten, ChainsDeleted int
	Totals                                     Totals

	spans   []span
	updates map[types.NamespacedName]*rendered // partial: nil value = removed
	cache   map[types.NamespacedName]*rendered // full: the new cache
	order   []types.NamespacedName
}

type span struct {
	first, last int // 1-based line numbers in Data
	name        types.NamespacedName
}

// ServiceAt returns the Service whose rules are on the given 1-based line of
// Data, so an iptables-restore error can be pinned on one Service.
func (pl *Plan) ServiceAt(line int) (types.NamespacedName, bool) {
	for _, s := range pl.spans {
		if line >= s.first && line <= s.last {
			return s.name, true
		}
	}
	return types.NamespacedName{}, false
}

// Plan renders the restore input for in.
func (p *Planner) Plan(in Input) *Plan {
	p.r.nodeIPs = in.NodeIPs
	if in.Full || !p.valid {
		return p.planFull(in)
	}
	return p.planPartial(in)
}

// Commit records that the kernel accepted pl.
func (p *Planner) Commit(pl *Plan) {
	if pl.Full {
		p.cache = pl.cache
	} else {
		for name, r := range pl.updates {
			if r == nil {
				delete(p.cache, name)
			} else {
				p.cache[name] = r
			}
		}
	}
	p.order, p.total, p.valid = pl.order, pl.Totals, true
}

// Totals returns the rule and chain counts of the last committed Plan.
func (p *Planner) Totals() Totals { return p.total }

// Invalidate forgets what the kernel holds, forcing the next Plan to be
// full; call it when a restore failed.
func (p *Planner) Invalidate() { p.valid = false }

func (p *Planner) planFull(in Input) *Plan {
	pl := &Plan{Full: true, cache: make(map[types.NamespacedName]*rendered, len(in.Services))}
	pl.order = make([]types.NamespacedName, 0, len(in.Services))
	for name := range in.Services {
		pl.order = append(pl.order, name)
	}
	slices.SortFunc(pl.order, model.CompareNames)
	for _, name := range pl.order {
		pl.cache[name] = p.r.render(in.Services[name])
	}
	lookup := func(n types.NamespacedName) *rendered { return pl.cache[n] }
	stale := staleChains(in.Existing, pl.cache)

	size := 4096
	for _, r := range pl.cache {
		size += len(r.body.b) + 40*len(r.chains)
		for d := range numDispatch {
			size += len(r.dispatch[d].b)
		}
	}
	w := &writer{b: make([]byte, 0, size), bulk: p.cfg.BulkRules}
	w.table(TableFilter)
	w.declare(ServicesChain, ExternalServicesChain, NodePortsChain, ForwardChain, FirewallChain)
	p.writeStaticFilter(w)
	for _, d := range []dispatch{filterServices, filterExternal, filterNodePorts, filterFirewall} {
		w.dispatch(d, pl.order, lookup)
	}
	w.hooks(TableFilter, in.Existing)
	w.commit()

	w.table(TableNAT)
	w.declare(ServicesChain, NodePortsChain, PostroutingChain, MarkMasqChain)
	for _, name := range pl.order {
		w.declare(pl.cache[name].chains...)
	}
	w.declare(stale...)
	p.writeStaticNAT(w)
	w.dispatch(natServices, pl.order, lookup)
	w.nodePortsJump()
	w.dispatch(natNodePorts, pl.order, lookup)
	for _, name := range pl.order {
		w.piece(name, &pl.cache[name].body)
	}
	w.delete(stale)
	w.hooks(TableNAT, in.Existing)
	w.commit()
	pl.Totals = totals(pl.cache)
	w.finish(pl)
	return pl
}

func (p *Planner) planPartial(in Input) *Plan {
	pl := &Plan{updates: map[types.NamespacedName]*rendered{}, order: p.order}
	var dirty [numDispatch]bool
	membership := false
	for _, name := range in.Changed {
		old := p.cache[name]
		var r *rendered
		if svc := in.Services[name]; svc != nil {
			r = p.r.render(svc)
		}
		if old == nil && r == nil {
			continue
		}
		pl.updates[name] = r
		membership = membership || (old == nil) != (r == nil)
		for d := range numDispatch {
			if !bytes.Equal(old.dispatchBytes(d), r.dispatchBytes(d)) {
				dirty[d] = true
			}
		}
	}
	if membership {
		pl.order = nextOrder(p.order, pl.updates)
	}
	lookup := func(n types.NamespacedName) *rendered {
		if r, ok := pl.updates[n]; ok {
			return r
		}
		return p.cache[n]
	}
	changed := slices.SortedFunc(func(yield func(types.NamespacedName) bool) {
		for n := range pl.updates {
			if !yield(n) {
				return
			}
		}
	}, model.CompareNames)

	w := &writer{bulk: p.cfg.BulkRules}
	if dirty[filterServices] || dirty[filterExternal] || dirty[filterNodePorts] || dirty[filterFirewall] {
		w.table(TableFilter)
		for _, d := range []dispatch{filterServices, filterExternal, filterNodePorts, filterFirewall} {
			if dirty[d] {
				w.declare(d.chain())
			}
		}
		for _, d := range []dispatch{filterServices, filterExternal, filterNodePorts, filterFirewall} {
			if dirty[d] {
				w.dispatch(d, pl.order, lookup)
			}
		}
		w.commit()
	}
	if dirty[natServices] || dirty[natNodePorts] || len(changed) > 0 {
		w.table(TableNAT)
		for _, d := range []dispatch{natServices, natNodePorts} {
			if dirty[d] {
				w.declare(d.chain())
			}
		}
		var gone []string
		for _, name := range changed {
			old, r := p.cache[name], pl.updates[name]
			if r != nil {
				w.declare(r.chains...)
			}
			if old != nil {
				for _, c := range old.chains {
					if r == nil || !slices.Contains(r.chains, c) {
						gone = append(gone, c)
					}
				}
			}
		}
		w.declare(gone...)
		if dirty[natServices] {
			w.dispatch(natServices, pl.order, lookup)
			w.nodePortsJump()
		}
		if dirty[natNodePorts] {
			w.dispatch(natNodePorts, pl.order, lookup)
		}
		for _, name := range changed {
			if r := pl.updates[name]; r != nil {
				w.piece(name, &r.body)
			}
		}
		w.delete(gone)
		w.commit()
	}
	pl.Totals = p.total
	for name, r := range pl.updates {
		pl.Totals = pl.Totals.add(p.cache[name], -1).add(r, 1)
	}
	w.finish(pl)
	return pl
}

// staleChains returns the existing per-service chains no Service uses.
func staleChains(e *Existing, cache map[types.NamespacedName]*rendered) []string {
	var candidates []string
	for _, c := range e.Chains(TableNAT) {
		if IsServiceChain(c) {
			candidates = append(candidates, c)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	active := map[string]bool{}
	for _, r := range cache {
		for _, c := range r.chains {
			active[c] = true
		}
	}
	stale := slices.DeleteFunc(candidates, func(c string) bool { return active[c] })
	slices.Sort(stale)
	return stale
}

func (r *rendered) dispatchBytes(d dispatch) []byte {
	if r == nil {
		return nil
	}
	return r.dispatch[d].b
}

// nextOrder applies additions and removals to a sorted name list.
func nextOrder(order []types.NamespacedName, updates map[types.NamespacedName]*rendered) []types.NamespacedName {
	next := make([]types.NamespacedName, 0, len(order)+len(updates))
	for _, n := range order {
		if r, ok := updates[n]; !ok || r != nil {
			next = append(next, n)
		}
	}
	for n, r := range updates {
		if _, found := slices.BinarySearchFunc(order, n, model.CompareNames); r != nil && !found {
			next = append(next, n)
		}
	}
	slices.SortFunc(next, model.CompareNames)
	return next
}

// staticRules is how many rules writeStaticNAT and writeStaticFilter write
// plus the trailing node-ports jump.
const staticNATRules, staticFilterRules = 5, 3

func (p *Planner) writeStaticNAT(w *writer) {
	mark := p.cfg.MasqueradeMark
	w.raw("-A " + PostroutingChain + ` -m comment --comment "weft: not marked for SNAT" -m mark ! --mark ` + mark + "/" + mark + " -j RETURN")
	// Clear the mark so a packet re-traversing the stack is not masqueraded twice.
	w.raw("-A " + PostroutingChain + ` -m comment --comment "weft: clear SNAT mark" -j MARK --xor-mark ` + mark)
	w.raw("-A " + PostroutingChain + ` -m comment --comment "weft: service traffic requiring SNAT" -j MASQUERADE --random-fully`)
	w.raw("-A " + MarkMasqChain + ` -m comment --comment "weft: mark for SNAT" -j MARK --or-mark ` + mark)
}

func (p *Planner) writeStaticFilter(w *writer) {
	mark := p.cfg.MasqueradeMark
	// Invalid packets would otherwise reach pods un-NATed and reset
	// connections (kubernetes#74839).
	w.raw("-A " + ForwardChain + ` -m comment --comment "weft: drop invalid forwarded packets" -m conntrack --ctstate INVALID -j DROP`)
	w.raw("-A " + ForwardChain + ` -m comment --comment "weft: forward service traffic" -m mark --mark ` + mark + "/" + mark + " -j ACCEPT")
	w.raw("-A " + ForwardChain + ` -m comment --comment "weft: forward established service traffic" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`)
}

func totals(cache map[types.NamespacedName]*rendered) Totals {
	t := Totals{NATRules: staticNATRules, FilterRules: staticFilterRules, NATChains: 4}
	for _, r := range cache {
		t = t.add(r, 1)
	}
	return t
}

func (t Totals) add(r *rendered, sign int) Totals {
	if r == nil {
		return t
	}
	t.NATRules += sign * (r.body.n + r.dispatch[natServices].n + r.dispatch[natNodePorts].n)
	t.FilterRules += sign * (r.dispatch[filterServices].n + r.dispatch[filterExternal].n + r.dispatch[filterNodePorts].n + r.dispatch[filterFirewall].n)
	t.NATChains += sign * len(r.chains)
	return t
}
