package rootpublisher

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

type bundle struct {
	mu  sync.Mutex
	pem []byte
}

func (b *bundle) get() []byte  { b.mu.Lock(); defer b.mu.Unlock(); return b.pem }
func (b *bundle) set(p string) { b.mu.Lock(); defer b.mu.Unlock(); b.pem = []byte(p) }

func pod(ns, name string, meshed bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if meshed {
		p.Annotations = map[string]string{StatusAnnotation: `{"version":"dev"}`}
	}
	return p
}

func rootCert(t *testing.T, client *fake.Clientset, ns string) string {
	t.Helper()
	cm, err := client.CoreV1().ConfigMaps(ns).Get(context.Background(), ConfigMapName, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return cm.Data[DataKey]
}

func TestPublishesToMeshedNamespacesAndFollowsRotation(t *testing.T) {
	client := fake.NewClientset(
		pod("shop", "web", true),
		pod("plain", "db", false),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fresh", Labels: map[string]string{InjectionLabel: "enabled"}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "stale", Name: ConfigMapName}, Data: map[string]string{DataKey: "old"}},
		pod("stale", "api", true),
	)
	b := &bundle{pem: []byte("ROOT-1")}
	changed := make(chan struct{}, 1)
	p, err := New(Config{Client: client, Bundle: b.get, Changed: changed, Namespaces: []string{"weft-system"},
		MinInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	for _, ns := range []string{"shop", "fresh", "stale", "weft-system"} {
		require.Eventually(t, func() bool { return rootCert(t, client, ns) == "ROOT-1" }, 5*time.Second, 10*time.Millisecond, ns)
	}
	assert.Empty(t, rootCert(t, client, "plain"), "namespaces without meshed pods are left alone")

	// A new meshed pod in another namespace gets the bundle there.
	_, err = client.CoreV1().Pods("late").Create(ctx, pod("late", "x", true), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return rootCert(t, client, "late") == "ROOT-1" }, 5*time.Second, 10*time.Millisecond)

	// Rotation: the two-root bundle reaches every namespace.
	b.set("ROOT-1\nROOT-2")
	changed <- struct{}{}
	for _, ns := range []string{"shop", "fresh", "stale", "weft-system", "late"} {
		require.Eventually(t, func() bool { return rootCert(t, client, ns) == "ROOT-1\nROOT-2" }, 5*time.Second, 10*time.Millisecond, ns)
	}

	// A deleted ConfigMap is recreated.
	require.NoError(t, client.CoreV1().ConfigMaps("shop").Delete(ctx, ConfigMapName, metav1.DeleteOptions{}))
	require.Eventually(t, func() bool { return rootCert(t, client, "shop") == "ROOT-1\nROOT-2" }, 5*time.Second, 10*time.Millisecond)

	cancel()
	require.NoError(t, <-done)
}

func TestSyncIsIdempotent(t *testing.T) {
	client := fake.NewClientset(pod("shop", "web", true))
	p, err := New(Config{Client: client, Bundle: func() []byte { return []byte("ROOT") }})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.factory.Start(ctx.Done())
	p.cmFact.Start(ctx.Done())
	p.factory.WaitForCacheSync(ctx.Done())
	p.cmFact.WaitForCacheSync(ctx.Done())
	require.NoError(t, p.Sync(ctx))
	require.Eventually(t, func() bool {
		_, err := p.cms.ConfigMaps("shop").Get(ConfigMapName)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	before := len(client.Actions())
	require.NoError(t, p.Sync(ctx))
	assert.Equal(t, before, len(client.Actions()), "second sync writes nothing")
}
