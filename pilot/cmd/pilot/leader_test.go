package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/pilot/ca/rootstore"
	"k8s.io/client-go/kubernetes/fake"
)

func TestLoadCAWaitsForTheLeadersRoot(t *testing.T) {
	client := fake.NewClientset()
	td := spiffeid.RequireTrustDomainFromString("cluster.local")
	follower, err := rootstore.New(rootstore.Config{Client: client, TrustDomain: td, Leading: func() bool { return false }})
	require.NoError(t, err)
	leader, err := rootstore.New(rootstore.Config{Client: client, TrustDomain: td})
	require.NoError(t, err)
	go func() {
		time.Sleep(300 * time.Millisecond)
		assert.NoError(t, leader.Sync(context.Background()))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, loadCA(ctx, follower))
	assert.True(t, follower.CA().SignerCert().Equal(leader.CA().SignerCert()))

	lonely, err := rootstore.New(rootstore.Config{Client: fake.NewClientset(), TrustDomain: td, Leading: func() bool { return false }})
	require.NoError(t, err)
	ctx, cancel = context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err = loadCA(ctx, lonely)
	assert.ErrorIs(t, err, rootstore.ErrNoRoot)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

type loop struct {
	runs    *atomic.Int32
	started chan struct{}
}

func (l loop) Run(ctx context.Context) error {
	l.runs.Add(1)
	close(l.started)
	<-ctx.Done()
	return nil
}

func TestSingletonsAreBuiltPerTermAndWriteStatusAfterTheModelSynced(t *testing.T) {
	var built, runs atomic.Int32
	var pubStarted, statusStarted chan struct{}
	newPub := func() (runner, error) {
		built.Add(1)
		pubStarted = make(chan struct{})
		return loop{&runs, pubStarted}, nil
	}
	newStatus := func() (runner, error) {
		statusStarted = make(chan struct{})
		return loop{&runs, statusStarted}, nil
	}
	synced := make(chan struct{})
	work := singletons(newPub, newStatus, synced)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- work(ctx) }()
	require.Eventually(t, func() bool { return runs.Load() == 1 }, 5*time.Second, 5*time.Millisecond, "the publisher runs at once")
	<-pubStarted
	select {
	case <-statusStarted:
		t.Fatal("status written from an unsynced model")
	case <-time.After(50 * time.Millisecond):
	}
	close(synced)
	<-statusStarted
	cancel() // leadership lost
	require.NoError(t, <-done)

	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- work(ctx) }()
	require.Eventually(t, func() bool { return runs.Load() == 4 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	assert.EqualValues(t, 2, built.Load(), "a new term builds a new publisher (a stopped informer factory cannot start again)")
}
