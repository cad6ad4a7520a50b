package leader

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fast are durations short enough for tests and valid for client-go.
func fast(client kubernetes.Interface, id string) Config {
	return Config{Client: client, Namespace: "weft-system", Name: "weft-pilot", Identity: id,
		LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond}
}

// replica runs an Elector whose work counts how often it runs at once.
type replica struct {
	e      *Elector
	cancel context.CancelFunc
	done   chan error
	terms  atomic.Int32
}

func start(t *testing.T, cfg Config, running *atomic.Int32, maxRunning *atomic.Int32) *replica {
	t.Helper()
	e, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{e: e, cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- e.Run(ctx, func(ctx context.Context) error {
			r.terms.Add(1)
			n := running.Add(1)
			for {
				m := maxRunning.Load()
				if n <= m || maxRunning.CompareAndSwap(m, n) {
					break
				}
			}
			<-ctx.Done()
			running.Add(-1)
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 10*time.Millisecond, what)
}

func holder(t *testing.T, client kubernetes.Interface) string {
	t.Helper()
	l, err := client.CoordinationV1().Leases("weft-system").Get(context.Background(), "weft-pilot", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func TestOneOfTwoReplicasLeadsAndTheOtherTakesOver(t *testing.T) {
	client := fake.NewClientset()
	var running, maxRunning atomic.Int32
	a := start(t, fast(client, "pilot-a"), &running, &maxRunning)
	eventually(t, "pilot-a leads", a.e.Leading)
	b := start(t, fast(client, "pilot-b"), &running, &maxRunning)
	time.Sleep(3 * time.Second) // longer than a lease: b must still wait
	assert.False(t, b.e.Leading(), "a renewed lease is not taken over")
	assert.Equal(t, "pilot-a", holder(t, client))

	a.cancel() // pilot-a shuts down: it releases the Lease
	require.NoError(t, <-a.done)
	a.done <- nil // for the cleanup
	assert.False(t, a.e.Leading())
	eventually(t, "pilot-b takes over", b.e.Leading)
	assert.Equal(t, "pilot-b", holder(t, client))
	assert.EqualValues(t, 1, maxRunning.Load(), "the leader's work never ran on both replicas at once")
	assert.EqualValues(t, 1, b.terms.Load())
}

func TestLeaderThatCannotRenewStepsDownAndCampaignsAgain(t *testing.T) {
	client := fake.NewClientset()
	var failRenew atomic.Bool
	client.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failRenew.Load() {
			return true, nil, errors.New("API server unreachable")
		}
		return false, nil, nil
	})
	var running, maxRunning atomic.Int32
	a := start(t, fast(client, "pilot-a"), &running, &maxRunning)
	eventually(t, "pilot-a leads", a.e.Leading)
	failRenew.Store(true)
	eventually(t, "pilot-a steps down after its renew deadline", func() bool { return !a.e.Leading() })
	eventually(t, "the leader's work stopped", func() bool { return running.Load() == 0 })
	failRenew.Store(false)
	eventually(t, "pilot-a leads again once the API server answers", a.e.Leading)
	assert.EqualValues(t, 2, a.terms.Load(), "a second term, after the first one's work returned")
	assert.EqualValues(t, 1, maxRunning.Load())
}

func TestLeadersWorkErrorEndsRunAndReleasesTheLease(t *testing.T) {
	client := fake.NewClientset()
	e, err := New(fast(client, "pilot-a"))
	require.NoError(t, err)
	err = e.Run(context.Background(), func(context.Context) error { return errors.New("publisher broke") })
	assert.ErrorContains(t, err, "leader's work: publisher broke")
	assert.False(t, e.Leading())
	assert.Empty(t, holder(t, client), "the Lease is released for another replica")
}

func TestAlwaysLeadsWithoutALease(t *testing.T) {
	e := Always()
	assert.False(t, e.Leading(), "not before Run")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		assert.NoError(t, e.Run(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil }))
	}()
	eventually(t, "leads at once", e.Leading)
	cancel()
	wg.Wait()
	assert.False(t, e.Leading())
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(Config{Namespace: "weft-system", Name: "weft-pilot", Identity: "a"})
	assert.ErrorContains(t, err, "needs a client")
	cfg := fast(fake.NewClientset(), "a")
	cfg.RenewDeadline = cfg.LeaseDuration
	_, err = New(cfg)
	assert.ErrorContains(t, err, "leaseDuration must be greater than renewDeadline")
	cfg = fast(fake.NewClientset(), "a")
	cfg.LeaseDuration, cfg.RenewDeadline = 900*time.Millisecond, 500*time.Millisecond
	_, err = New(cfg)
	assert.ErrorContains(t, err, "under a second", "the Lease stores whole seconds")
}
