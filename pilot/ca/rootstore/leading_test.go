package rootstore

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/pilot/ca"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestOnlyTheLeaderWritesTheRoot: a replica that does not lead never
// generates or rotates the self-signed root; it waits for the leader's and
// follows its rotation.
func TestOnlyTheLeaderWritesTheRoot(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	var leads atomic.Bool
	cfg := Config{Client: client, TrustDomain: td, RootTTL: 30 * 24 * time.Hour, CA: ca.Config{Clock: clk.Now},
		Rotation: ca.RotationPolicy{RenewBefore: 10 * 24 * time.Hour}}
	followerCfg := cfg
	followerCfg.Leading = func() bool { return false }
	follower, err := New(followerCfg)
	require.NoError(t, err)
	leaderCfg := cfg
	leaderCfg.Leading = leads.Load
	leader, err := New(leaderCfg)
	require.NoError(t, err)

	err = follower.Sync(ctx)
	require.ErrorIs(t, err, ErrNoRoot)
	assert.Nil(t, follower.CA())
	require.ErrorIs(t, leader.Sync(ctx), ErrNoRoot, "not leading yet")
	_, err = client.CoreV1().Secrets("weft-system").Get(ctx, "weft-ca", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "nobody generated a root")

	leads.Store(true)
	require.NoError(t, leader.Sync(ctx))
	require.NoError(t, follower.Sync(ctx))
	assert.True(t, follower.CA().SignerCert().Equal(leader.CA().SignerCert()), "the follower signs with the leader's root")

	clk.Advance(20 * 24 * time.Hour) // into the rotation window
	require.NoError(t, follower.Sync(ctx))
	assert.Len(t, follower.CA().Roots(), 1, "a follower does not step the rotation")
	require.NoError(t, leader.Sync(ctx))
	assert.Len(t, leader.CA().Roots(), 2, "the leader publishes the next root")
	require.NoError(t, follower.Sync(ctx))
	assert.Len(t, follower.CA().Roots(), 2, "the follower picks up the leader's step")
}

// TestRotationWritesAgainstTheRootItWasComputedFrom: a rotation step is
// written with the resourceVersion of the Secret it was computed from, so
// a step computed from a root that changed meanwhile is refused.
func TestRotationWritesAgainstTheRootItWasComputedFrom(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, err := ca.NewSelfSigned(ca.RootConfig{TrustDomain: td, TTL: 30 * 24 * time.Hour, Clock: clk.Now})
	require.NoError(t, err)
	data, err := a.MarshalData()
	require.NoError(t, err)
	stored := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "weft-ca", Namespace: "weft-system", ResourceVersion: "7"}, Data: data}
	client := fake.NewClientset(stored)
	client.PrependReactor("update", "secrets", func(act k8stesting.Action) (bool, runtime.Object, error) {
		if rv := act.(k8stesting.UpdateAction).GetObject().(*corev1.Secret).ResourceVersion; rv != "7" {
			return true, nil, apierrors.NewConflict(corev1.Resource("secrets"), "weft-ca", errors.New("resourceVersion "+rv+" is stale"))
		}
		return false, nil, nil
	})
	s, err := New(Config{Client: client, TrustDomain: td, RootTTL: 30 * 24 * time.Hour, CA: ca.Config{Clock: clk.Now},
		Rotation: ca.RotationPolicy{RenewBefore: 10 * 24 * time.Hour}})
	require.NoError(t, err)
	clk.Advance(20 * 24 * time.Hour)

	stale := stored.DeepCopy()
	stale.ResourceVersion = "6"
	_, err = s.rotate(ctx, stale, a)
	assert.True(t, apierrors.IsConflict(err), "a step from a stale read is refused: %v", err)
	next, err := s.rotate(ctx, stored, a)
	require.NoError(t, err)
	assert.NotNil(t, next.Next, "a step from the current read is written")
}
