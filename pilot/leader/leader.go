// Package leader lets several pilot replicas share one cluster: every
// replica serves the CA and xDS, and the replica holding a Lease
// (coordination.k8s.io/v1, client-go's leaderelection) also runs the loops
// that must have a single writer — root CA generation and rotation, the
// trust-bundle publisher and the route/policy status writer. Leadership is
// lost when the Lease cannot be renewed within RenewDeadline; the loops
// then stop and the replica campaigns again, while it keeps serving.
package leader

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Config configures an Elector. The durations are client-go's (and
// kube-controller-manager's defaults when zero): a leader that stops
// renewing is replaced after LeaseDuration; one that cannot renew for
// RenewDeadline steps down; RetryPeriod is the pace of both.
type Config struct {
	Client kubernetes.Interface
	// Namespace and Name of the Lease.
	Namespace, Name string
	// Identity is this replica's name in the Lease (the pod name).
	Identity string

	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Elector campaigns for the Lease and runs the leader's work while it
// holds it.
type Elector struct {
	cfg    Config
	always bool
	// lead is the context of the current term; nil or done when this
	// replica does not lead.
	lead atomic.Pointer[context.Context]
}

// New validates cfg and fills in the default durations.
func New(cfg Config) (*Elector, error) {
	if cfg.Client == nil || cfg.Namespace == "" || cfg.Name == "" || cfg.Identity == "" {
		return nil, errors.New("leader election needs a client, the Lease's namespace and name, and an identity")
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = 15 * time.Second
	}
	if cfg.RenewDeadline == 0 {
		cfg.RenewDeadline = 10 * time.Second
	}
	if cfg.RetryPeriod == 0 {
		cfg.RetryPeriod = 2 * time.Second
	}
	if cfg.LeaseDuration < time.Second {
		// The Lease records whole seconds: less would read as expired.
		return nil, fmt.Errorf("leader election: lease duration %v is under a second", cfg.LeaseDuration)
	}
	if _, err := newElector(cfg, leaderelection.LeaderCallbacks{
		OnStartedLeading: func(context.Context) {}, OnStoppedLeading: func() {},
	}); err != nil {
		return nil, err
	}
	return &Elector{cfg: cfg}, nil
}

// Always is an Elector without election, for a single replica
// (--leader-elect=false): it leads from the start until Run returns.
func Always() *Elector { return &Elector{always: true} }

// Leading reports whether this replica holds the Lease now. It turns false
// as soon as a renewal deadline passes, before the leader's work has
// noticed its context is done, so writers can check it right before
// writing.
func (e *Elector) Leading() bool {
	p := e.lead.Load()
	return p != nil && (*p).Err() == nil
}

// Run campaigns until ctx is done. Each time this replica wins, lead runs
// with a context that ends when leadership is lost (or ctx ends); once it
// has returned, the replica campaigns again, so the leader's work never
// runs twice at once in one process. An error from lead ends Run (after
// releasing the Lease) with that error. On ctx's end the Lease is released,
// so a replacement leads within RetryPeriod instead of LeaseDuration.
func (e *Elector) Run(ctx context.Context, lead func(context.Context) error) error {
	if e.always {
		e.lead.Store(&ctx)
		defer e.lead.Store(nil)
		return lead(ctx)
	}
	log := logr.FromContextOrDiscard(ctx).WithName("leader").WithValues("lease", e.cfg.Namespace+"/"+e.cfg.Name, "identity", e.cfg.Identity)
	for ctx.Err() == nil {
		if err := e.term(ctx, log, lead); err != nil {
			return err
		}
	}
	return nil
}

// term is one campaign: it waits for the Lease and, once held, runs lead
// until leadership or ctx ends.
func (e *Elector) term(ctx context.Context, log logr.Logger, lead func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := make(chan context.Context, 1)
	stopped := make(chan struct{})
	le, err := newElector(e.cfg, leaderelection.LeaderCallbacks{
		// client-go calls this in a goroutine of its own; lead runs here,
		// in term, so a term's work has ended before the next campaign.
		OnStartedLeading: func(lctx context.Context) { started <- lctx },
		OnStoppedLeading: func() { close(stopped) },
	})
	if err != nil {
		return err
	}
	go le.Run(ctx)
	select {
	case <-stopped: // ctx ended before this replica won
		return nil
	case lctx := <-started:
		e.lead.Store(&lctx)
		log.Info("leading")
		err := lead(lctx)
		lost := lctx.Err() != nil
		e.lead.Store(nil)
		cancel() // a lead that returned by itself gives the Lease up
		<-stopped
		if err != nil && !lost {
			return fmt.Errorf("leader's work: %w", err)
		}
		log.Info("stopped leading", "workError", fmt.Sprint(err))
		return nil
	}
}

func newElector(cfg Config, cb leaderelection.LeaderCallbacks) (*leaderelection.LeaderElector, error) {
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.Name},
			Client:     cfg.Client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
		},
		LeaseDuration:   cfg.LeaseDuration,
		RenewDeadline:   cfg.RenewDeadline,
		RetryPeriod:     cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            cfg.Name,
		Callbacks:       cb,
	})
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	return le, nil
}
