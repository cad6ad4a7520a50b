package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/coreos/go-iptables/iptables"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

const (
	// minSyncInterval bounds the sync frequency: a burst of Node events
	// (a cluster scaling up) costs one sync per second, not one per event.
	minSyncInterval = time.Second
	maxBackoff      = time.Minute
)

// Agent reconciles one node's pod network with the cluster's Nodes.
type Agent struct {
	cfg     Config
	client  kubernetes.Interface
	metrics *Metrics
	ipt     iptablesAPI
	nodes   corelisters.NodeLister
	dirty   chan struct{}

	ready    atomic.Bool  // the conflist is in place
	lastSync atomic.Int64 // unix nanoseconds of the last finished sync
}

// NewAgent validates cfg and finds iptables.
func NewAgent(cfg Config, client kubernetes.Interface, m *Metrics) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ipt, err := iptables.New()
	if err != nil {
		return nil, fmt.Errorf("find iptables: %w", err)
	}
	return &Agent{cfg: cfg, client: client, metrics: m, ipt: ipt, dirty: make(chan struct{}, 1)}, nil
}

// Routes to other nodes' pod CIDRs and the masquerade exceptions.
// +kubebuilder:rbac:groups="",resources=nodes,verbs=list;watch

// Run watches Nodes and reconciles until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(a.client, 0)
	inf := factory.Core().V1().Nodes()
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { a.markDirty() },
		UpdateFunc: func(oldObj, newObj any) {
			if routingChanged(oldObj, newObj) {
				a.markDirty()
			}
		},
		DeleteFunc: func(any) { a.markDirty() },
	}); err != nil {
		return fmt.Errorf("watch nodes: %w", err)
	}
	a.nodes = inf.Lister()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return fmt.Errorf("sync node cache: %w", context.Cause(ctx))
	}
	a.loop(ctx)
	return nil
}

// markDirty is all an event handler does; the loop does the work.
func (a *Agent) markDirty() {
	select {
	case a.dirty <- struct{}{}:
	default:
	}
}

// routingChanged ignores the status heartbeats that make up most Node
// updates; only podCIDR and InternalIP matter here.
func routingChanged(oldObj, newObj any) bool {
	o, ok1 := oldObj.(*corev1.Node)
	n, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 {
		return true
	}
	po, _ := PeerFromNode(o)
	pn, _ := PeerFromNode(n)
	return po != pn
}

// loop syncs once, then on every trigger: dirty (incremental), the resync
// ticker or a retry after an error (full). Syncs are at least
// minSyncInterval apart; retries back off exponentially up to maxBackoff.
func (a *Agent) loop(ctx context.Context) {
	log := logr.FromContextOrDiscard(ctx)
	resync := time.NewTicker(a.cfg.ResyncPeriod)
	defer resync.Stop()
	var retry <-chan time.Time
	failures, full := 0, true
	for {
		started := time.Now()
		if err := a.sync(ctx, full); err != nil {
			failures++
			wait := min(time.Second<<min(failures-1, 10), maxBackoff)
			log.Error(err, "sync failed", "retryIn", wait, "failures", failures)
			retry = time.After(wait)
		} else {
			failures, retry = 0, nil
		}
		full = false
		select {
		case <-ctx.Done():
			return
		case <-a.dirty:
		case <-resync.C:
			full = true
		case <-retry:
			full = true
		}
		if d := time.Until(started.Add(minSyncInterval)); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
	}
}

// Healthy is the readiness of the node's pod network: the conflist is in
// place (so the runtime can start pods) and the loop is alive.
func (a *Agent) Healthy() error {
	if !a.ready.Load() {
		return errors.New("pod network not ready: no conflist yet (waiting for the node's podCIDR?)")
	}
	if last := time.Unix(0, a.lastSync.Load()); time.Since(last) > 3*a.cfg.ResyncPeriod+time.Minute {
		return fmt.Errorf("no sync since %s", last.Format(time.RFC3339))
	}
	return nil
}
