// Package proxier ties weft-proxy together: informer events go into the
// model.Tracker and poke the bounded-frequency runner; each run takes the
// changes, plans rules (full or partial), applies them in one
// iptables-restore, then updates health, metrics and conntrack. All kernel
// and API access goes through injected edges, so the whole loop runs in
// tests against fakes.
package proxier

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/weftmesh/weft/pilot/telemetry/netprog"
	"github.com/weftmesh/weft/proxy/conntrack"
	"github.com/weftmesh/weft/proxy/healthcheck"
	"github.com/weftmesh/weft/proxy/iptables"
	"github.com/weftmesh/weft/proxy/metrics"
	"github.com/weftmesh/weft/proxy/model"
	"github.com/weftmesh/weft/proxy/rules"
	"github.com/weftmesh/weft/proxy/runner"
)

// maxUntraced bounds the slice changes kept across failing syncs.
const maxUntraced = 10000

// quarantineFor is how long a Service whose rules the kernel rejected is
// left out (unless it changes earlier): long enough not to fail every
// sync, short enough to recover from a transient error.
const quarantineFor = 10 * time.Minute

// Config wires a Proxier.
type Config struct {
	Tracker     *model.Tracker
	ClusterCIDR netip.Prefix
	// NodeIPs overrides the addresses from the Node object (--node-ip).
	NodeIPs []netip.Addr
	// MinSyncPeriod bounds how often rules are written. SyncPeriod is the
	// longest time between syncs: a sync without changes checks a canary
	// chain and resyncs fully if it is gone. FullSyncPeriod (default one
	// hour, kube-proxy's value) forces a complete rewrite regardless.
	MinSyncPeriod, SyncPeriod, FullSyncPeriod time.Duration
	// BulkRules is rules.Config.BulkRules (iptables-nft work-around).
	BulkRules int
	IPTables  iptables.Interface
	Conntrack conntrack.Cleaner
	Metrics   *metrics.Metrics
	// Tracing records a "weft-proxy.sync" span per EndpointSlice change a
	// sync programmed (pilot/telemetry/netprog); nil records none.
	Tracing *netprog.SyncRecorder
	// Health and ServiceHealth may be nil in tests.
	Health        *healthcheck.Node
	ServiceHealth *healthcheck.Services
	Clock         clock.Clock
}

// Proxier runs syncs; see the package doc.
type Proxier struct {
	cfg     Config
	planner *rules.Planner
	runner  *runner.Runner

	// Only the sync goroutine touches the fields below.
	needFull    bool
	lastFull    time.Time
	nodeGen     int
	quarantined map[types.NamespacedName]time.Time
	// untraced are slice changes taken by syncs that failed: the sync
	// that finally applies them ends their spans.
	untraced []netprog.Change

	mu     sync.Mutex
	synced bool // informers delivered their initial lists
}

// New checks cfg and returns a Proxier.
func New(cfg Config) (*Proxier, error) {
	if cfg.Tracker == nil || cfg.IPTables == nil || cfg.Conntrack == nil || cfg.Metrics == nil {
		return nil, errors.New("proxier: tracker, iptables, conntrack and metrics are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.FullSyncPeriod <= 0 {
		cfg.FullSyncPeriod = time.Hour
	}
	if cfg.Tracing == nil {
		cfg.Tracing = netprog.NewSyncRecorder(netprog.SyncConfig{})
	}
	p := &Proxier{
		cfg:         cfg,
		planner:     rules.NewPlanner(rules.Config{ClusterCIDR: cfg.ClusterCIDR, BulkRules: cfg.BulkRules}),
		needFull:    true,
		quarantined: map[types.NamespacedName]time.Time{},
	}
	r, err := runner.New(runner.Config{
		Sync:        p.Sync,
		MinInterval: cfg.MinSyncPeriod,
		Burst:       2,
		MaxInterval: cfg.SyncPeriod,
		RetryMin:    cfg.MinSyncPeriod,
		RetryMax:    cfg.SyncPeriod,
		Clock:       cfg.Clock,
	})
	if err != nil {
		return nil, fmt.Errorf("proxier: %w", err)
	}
	p.runner = r
	return p, nil
}

// Changed tells the proxier the tracker holds new changes. Before the
// informers synced it only records them: the first sync must see the whole
// cluster, or it would briefly delete rules of Services not yet listed.
func (p *Proxier) Changed() {
	if p.cfg.Health != nil {
		p.cfg.Health.Queued()
	}
	p.mu.Lock()
	synced := p.synced
	p.mu.Unlock()
	if synced {
		p.runner.Run()
	}
}

// Synced marks the informers' initial lists complete and asks for the first
// sync.
func (p *Proxier) Synced() {
	p.mu.Lock()
	p.synced = true
	p.mu.Unlock()
	p.cfg.Tracker.TraceChanges()
	p.runner.Run()
}

// Run runs syncs until ctx ends.
func (p *Proxier) Run(ctx context.Context) { p.runner.Loop(ctx) }

// Sync plans and applies one round of rules. It is the runner's work
// function; an error makes the runner retry with backoff, and the retry is a
// full sync.
func (p *Proxier) Sync(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	p.mu.Lock()
	synced := p.synced
	p.mu.Unlock()
	if !synced {
		// The runner's periodic timer can fire while the informers are
		// still listing (a slow API server): a sync now would program a
		// partial cluster and delete the rules of Services not listed yet.
		// Synced asks for the first sync.
		log.V(1).Info("informers not synced yet; sync deferred")
		return nil
	}
	start := p.cfg.Clock.Now()
	c := p.cfg.Tracker.Take()
	p.untraced = append(p.untraced, c.Slices...)
	if n := len(p.untraced) - maxUntraced; n > 0 {
		p.untraced = slices.Delete(p.untraced, 0, n) // syncs keep failing: drop the oldest spans
	}
	node := p.cfg.Tracker.Node()
	if p.cfg.Health != nil {
		p.cfg.Health.SetEligible(node.Eligible)
	}
	nodeIPs := p.cfg.NodeIPs
	if len(nodeIPs) == 0 {
		nodeIPs = node.IPs
	}
	full := p.needFull || c.NodeGeneration != p.nodeGen || start.Sub(p.lastFull) >= p.cfg.FullSyncPeriod
	if !full && len(c.Changed) == 0 {
		full = p.canaryGone(ctx, log)
	}
	services := p.admit(log, c, start)

	in := rules.Input{Services: services, Changed: c.Changed, Full: full, NodeIPs: nodeIPs}
	if full {
		save, err := p.cfg.IPTables.Save(ctx)
		if err != nil {
			return p.failed(ctx, full, fmt.Errorf("read current rules: %w", err))
		}
		in.Existing = rules.ParseSave(save)
	}
	plan := p.planner.Plan(in)
	if err := p.restore(ctx, plan.Data); err != nil {
		p.blame(log, plan, err, start)
		return p.failed(ctx, full, fmt.Errorf("apply rules (full=%v): %w", full, err))
	}
	p.planner.Commit(plan)
	now := p.cfg.Clock.Now()
	p.needFull, p.nodeGen = false, c.NodeGeneration
	if full {
		p.lastFull = start
	}
	totals := plan.Totals
	p.cfg.Metrics.RecordSync(ctx, metrics.Sync{Full: full, Duration: now.Sub(start), At: now, Written: plan.RulesWritten,
		NATRules: totals.NATRules, FilterRules: totals.FilterRules, Skipped: len(c.Errors) + len(p.quarantined)})
	for _, times := range c.Triggers {
		for _, t := range times {
			p.cfg.Metrics.RecordProgramming(ctx, now.Sub(t))
		}
	}
	p.cfg.Tracing.Synced(ctx, p.untraced, netprog.Sync{End: now, Full: full, RulesWritten: plan.RulesWritten})
	p.untraced = nil
	if p.cfg.Health != nil {
		p.cfg.Health.Updated()
	}
	log.V(1).Info("synced rules", "full", full, "services", len(services), "changed", len(c.Changed),
		"rulesWritten", plan.RulesWritten, "natRules", totals.NATRules, "took", now.Sub(start))
	p.afterSync(ctx, log, services, c, full)
	return nil
}

func (p *Proxier) restore(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil // nothing changed
	}
	return p.cfg.IPTables.Restore(ctx, data)
}

// canaryGone reports whether weft's rules were flushed by someone else
// (firewalld reload, iptables -F): WEFT-MARK-MASQ is written only by full
// syncs, so its absence means the kernel lost our state.
func (p *Proxier) canaryGone(ctx context.Context, log logr.Logger) bool {
	ok, err := p.cfg.IPTables.ChainExists(ctx, rules.TableNAT, rules.MarkMasqChain)
	if err != nil {
		log.Error(err, "probe canary chain; resyncing fully")
		return true
	}
	if !ok {
		log.Info("weft-proxy chains disappeared; resyncing fully")
	}
	return !ok
}

// admit logs Services the node cannot program and returns the state
// without quarantined Services.
func (p *Proxier) admit(log logr.Logger, c model.Changes, now time.Time) map[types.NamespacedName]*model.Service {
	for _, name := range c.Changed {
		if err := c.Errors[name]; err != nil {
			log.Error(err, "skipping unsupported parts of service", "service", name.String())
		}
		delete(p.quarantined, name) // a changed Service gets another chance
	}
	for name, since := range p.quarantined {
		if now.Sub(since) >= quarantineFor {
			delete(p.quarantined, name)
			p.needFull = true
		}
	}
	if len(p.quarantined) == 0 {
		return c.Services
	}
	out := maps.Clone(c.Services)
	for name := range p.quarantined {
		delete(out, name)
	}
	return out
}

// blame quarantines the Service whose rule the kernel rejected, so the next
// (full) sync programs every other Service.
func (p *Proxier) blame(log logr.Logger, plan *rules.Plan, err error, now time.Time) {
	var re *iptables.RestoreError
	if !errors.As(err, &re) || re.Line == 0 {
		return
	}
	if name, ok := plan.ServiceAt(re.Line); ok {
		log.Error(err, "kernel rejected the rules of a service; leaving it out", "service", name.String(), "for", quarantineFor)
		p.quarantined[name] = now
	}
}

func (p *Proxier) failed(ctx context.Context, full bool, err error) error {
	logr.FromContextOrDiscard(ctx).Error(err, "sync failed; retrying with a full sync", "full", full)
	p.planner.Invalidate()
	p.needFull = true
	p.cfg.Metrics.RecordFailure(ctx, full)
	return err
}

// afterSync updates the health-check ports and removes stale UDP conntrack
// entries once the new rules are in place.
func (p *Proxier) afterSync(ctx context.Context, log logr.Logger, services map[types.NamespacedName]*model.Service, c model.Changes, full bool) {
	if p.cfg.ServiceHealth != nil {
		if err := p.cfg.ServiceHealth.Sync(serviceHealth(services)); err != nil {
			log.Error(err, "health check ports")
		}
	}
	if !full && !touchesUDP(services, c.Changed) {
		return
	}
	n, err := p.cfg.Conntrack.DeleteStale(conntrack.BuildFrontends(services))
	if err != nil {
		log.Error(err, "clean stale conntrack entries")
	}
	if n > 0 {
		p.cfg.Metrics.RecordConntrack(ctx, n)
		log.V(1).Info("deleted stale UDP conntrack entries", "count", n)
	}
}

func touchesUDP(services map[types.NamespacedName]*model.Service, changed []types.NamespacedName) bool {
	for _, name := range changed {
		if svc := services[name]; svc != nil {
			for _, port := range svc.Ports {
				if port.Protocol == model.UDP {
					return true
				}
			}
		}
	}
	return false
}

// serviceHealth lists the health-check node ports with their local ready
// endpoint counts.
func serviceHealth(services map[types.NamespacedName]*model.Service) map[uint16]healthcheck.ServiceHealth {
	out := map[uint16]healthcheck.ServiceHealth{}
	for name, svc := range services {
		for _, port := range svc.Ports {
			if port.HealthCheckNodePort == 0 {
				continue
			}
			local := 0
			for _, e := range svc.Endpoints[port.Name.Port] {
				if e.Local && e.Ready {
					local++
				}
			}
			h := out[port.HealthCheckNodePort]
			out[port.HealthCheckNodePort] = healthcheck.ServiceHealth{Name: name, LocalEndpoints: max(h.LocalEndpoints, local)}
		}
	}
	return out
}
