package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/weftmesh/weft/pilot/ca/rootstore"
	"github.com/weftmesh/weft/pilot/leader"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
)

// leaseName is the Lease pilot replicas elect a leader with, in pilot's
// namespace.
const leaseName = "weft-pilot"

// leaderFlags configure leader election (package leader).
type leaderFlags struct {
	enabled  bool
	identity string
	lease    time.Duration
	renew    time.Duration
	retry    time.Duration
}

func (l *leaderFlags) register(fs *flag.FlagSet) {
	host, _ := os.Hostname() // the pod name; an empty default fails validation below
	fs.BoolVar(&l.enabled, "leader-elect", true, "elect a leader among pilot replicas (Lease "+leaseName+") to generate and rotate the root, publish weft-root-cert and write route/policy status; false only for a single replica")
	fs.StringVar(&l.identity, "leader-elect-identity", host, "this replica's name in the Lease (default: the hostname, i.e. the pod name)")
	fs.DurationVar(&l.lease, "leader-elect-lease-duration", 15*time.Second, "how long a leader that stopped renewing keeps the Lease")
	fs.DurationVar(&l.renew, "leader-elect-renew-deadline", 10*time.Second, "how long a leader tries to renew before it steps down")
	fs.DurationVar(&l.retry, "leader-elect-retry-period", 2*time.Second, "interval between tries to acquire or renew the Lease")
}

// The Lease: read and renewed by name; created by the first replica.
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=weft-system,resources=leases,resourceNames=weft-pilot,verbs=get;update
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=weft-system,resources=leases,verbs=create

// elector builds the Elector of the flags.
func (l *leaderFlags) elector(client kubernetes.Interface, namespace string) (*leader.Elector, error) {
	if !l.enabled {
		return leader.Always(), nil
	}
	return leader.New(leader.Config{
		Client: client, Namespace: namespace, Name: leaseName, Identity: l.identity,
		LeaseDuration: l.lease, RenewDeadline: l.renew, RetryPeriod: l.retry,
	})
}

// loadCA waits until the store holds a CA: a replica that does not lead
// finds no self-signed root on a first install until the leader, elected
// meanwhile, has generated it. Other errors end the wait.
func loadCA(ctx context.Context, store *rootstore.Store) error {
	log := logr.FromContextOrDiscard(ctx)
	for {
		err := store.Sync(ctx)
		if !errors.Is(err, rootstore.ErrNoRoot) {
			if err != nil {
				return fmt.Errorf("load CA: %w", err)
			}
			return nil
		}
		log.Info("waiting for the leader to generate the root CA")
		select {
		case <-ctx.Done():
			return fmt.Errorf("load CA: %w", errors.Join(err, ctx.Err()))
		case <-time.After(time.Second):
		}
	}
}

// runner is a loop that runs until its context ends.
type runner interface{ Run(context.Context) error }

// singletons are the loops only the leader runs: the trust-bundle
// publisher and, once the mesh model has synced, the status writer. (The
// root's generation and rotation run in every replica's store, gated by
// Leading.) They stop when leadership ends; each term builds them anew, so
// a replica that leads again starts from fresh informers and forgets what
// it wrote in its last term (another leader may have written since).
func singletons(newPublisher, newStatusWriter func() (runner, error), modelSynced <-chan struct{}) func(context.Context) error {
	return func(ctx context.Context) error {
		publisher, err := newPublisher()
		if err != nil {
			return err
		}
		statusWriter, err := newStatusWriter()
		if err != nil {
			return err
		}
		g, ctx := errgroup.WithContext(ctx)
		g.Go(func() error { return publisher.Run(ctx) })
		g.Go(func() error {
			select {
			case <-modelSynced:
			case <-ctx.Done():
				return nil
			}
			return statusWriter.Run(ctx)
		})
		return g.Wait()
	}
}
