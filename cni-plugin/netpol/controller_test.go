package netpol

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/weftmesh/weft/pilot/telemetry"
)

// fakeKernel records changes; failures can be injected.
type fakeKernel struct {
	mu      sync.Mutex
	changes []*Change
	fail    int // Apply calls left to fail
}

func (k *fakeKernel) Existing() (Existing, error) { return Existing{}, nil }

func (k *fakeKernel) Apply(c *Change) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail > 0 {
		k.fail--
		return errors.New("injected failure")
	}
	k.changes = append(k.changes, c)
	return nil
}

func (k *fakeKernel) Intact() (bool, error) { return true, nil }

func (k *fakeKernel) DropCounters() (map[string]uint64, error) {
	return map[string]uint64{"drop-ingress-shop": 7, "drop-egress-db": 2}, nil
}

func (k *fakeKernel) Delete() error { return nil }

// written is everything written so far, as nft commands.
func (k *fakeKernel) written() (string, []*Change) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var b strings.Builder
	for _, c := range k.changes {
		b.WriteString(c.String())
	}
	return b.String(), append([]*Change(nil), k.changes...)
}

func apiPod(ns, name, ip, nodeName string, labels map[string]string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
	p.Spec.NodeName = nodeName
	p.Status.PodIP = ip
	p.Status.Phase = corev1.PodRunning
	return p
}

func apiNamespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{namespaceNameLabel: name}}}
}

type controllerRun struct {
	client  *fake.Clientset
	kernel  *fakeKernel
	metrics func() string
}

func runController(t *testing.T, kernel *fakeKernel, objs ...runtime.Object) *controllerRun {
	t.Helper()
	client := fake.NewClientset(objs...)
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "weft-cni-node"})
	require.NoError(t, err)
	m, err := NewMetrics(tel.MeterProvider, kernel)
	require.NoError(t, err)
	c, err := New(Config{NodeName: node, MinSyncInterval: 50 * time.Millisecond, CheckInterval: time.Second, FullSyncPeriod: time.Hour},
		client, kernel, m)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), testr.New(t)))
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return &controllerRun{client: client, kernel: kernel, metrics: func() string {
		rec := httptest.NewRecorder()
		tel.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body, err := io.ReadAll(rec.Body)
		require.NoError(t, err)
		return string(body)
	}}
}

func (r *controllerRun) eventually(t *testing.T, what string, cond func(written string) bool) {
	t.Helper()
	require.Eventually(t, func() bool {
		w, _ := r.kernel.written()
		return cond(w)
	}, 10*time.Second, 20*time.Millisecond, what)
}

// TestControllerBadInput: a policy with a malformed CIDR and one with an
// unsupported protocol (what an API server without strict validation, or
// a bypassed webhook, lets through) get a Warning event and a log line;
// their bad rules allow nothing, their pods stay isolated, and the other
// policies are programmed as usual.
func TestControllerBadInput(t *testing.T) {
	icmp := corev1.Protocol("ICMP")
	badCIDR := policy("shop", "bad-cidr", sel("app", "web"), ingress(ports(tcp(80)), blockPeer("10.1.2.300/24")))
	badProto := policy("shop", "bad-proto", sel("app", "web"),
		ingress([]networkingv1.NetworkPolicyPort{{Protocol: &icmp}}), ingress(ports(tcp(8443)), podPeer(sel("app", "api"))))
	good := policy("db", "good", sel("app", "pg"), ingress(ports(tcp(5432)), podPeer(sel())))
	r := runController(t, &fakeKernel{},
		apiNamespace("shop"), apiNamespace("db"),
		apiPod("shop", "web", "10.244.1.10", node, map[string]string{"app": "web"}),
		apiPod("shop", "api", "10.244.2.11", "n2", map[string]string{"app": "api"}),
		apiPod("db", "pg", "10.244.1.20", node, map[string]string{"app": "pg"}),
		badCIDR, badProto, good)

	r.eventually(t, "programmed", func(w string) bool { return strings.Contains(w, `comment "db/good ingress rule 0"`) })
	w, changes := r.kernel.written()
	assert.True(t, changes[0].Full, "the first sync is full")
	assert.Contains(t, w, `jump `+PolicyChain(Ingress, "shop/bad-cidr")+` comment "shop/bad-cidr"`, "the bad policy still isolates its pods")
	assert.Contains(t, w, `comment "shop/bad-proto ingress rule 1"`, "its good rule is kept")
	assert.NotContains(t, w, "shop/bad-proto ingress rule 0")
	assert.NotContains(t, w, "shop/bad-cidr ingress rule 0")

	var events []corev1.Event
	require.Eventually(t, func() bool {
		list, err := r.client.CoreV1().Events("shop").List(context.Background(), metav1.ListOptions{})
		events = list.Items
		return err == nil && len(events) == 2
	}, 10*time.Second, 20*time.Millisecond)
	messages := map[string]string{}
	for _, e := range events {
		assert.Equal(t, corev1.EventTypeWarning, e.Type)
		assert.Equal(t, EventReasonInvalid, e.Reason)
		assert.Equal(t, "NetworkPolicy", e.InvolvedObject.Kind)
		messages[e.InvolvedObject.Name] = e.Message
	}
	assert.Contains(t, messages["bad-cidr"], `Not enforced as written on node n1: ingress rule 0 skipped (allows nothing): peer 0: malformed CIDR "10.1.2.300/24"`)
	assert.Contains(t, messages["bad-proto"], `unsupported protocol "ICMP"`)
	m := r.metrics()
	assert.Contains(t, m, `weft_cni_node_netpol_policies{state="invalid"} 2`)
	assert.Contains(t, m, `weft_cni_node_netpol_policies{state="programmed"} 3`)
	assert.Contains(t, m, `weft_cni_node_netpol_isolated_pods 2`)
	assert.Contains(t, m, `weft_cni_node_netpol_dropped_packets_total{direction="ingress",namespace="shop"} 7`)
	assert.Contains(t, m, `weft_cni_node_netpol_sync_duration_seconds_count{mode="full"} 1`)

	// Fixing the policy replaces its chain; the event is not repeated.
	fixed := badCIDR.DeepCopy()
	fixed.Spec.Ingress[0].From[0].IPBlock.CIDR = "10.1.2.0/24"
	_, err := r.client.NetworkingV1().NetworkPolicies("shop").Update(context.Background(), fixed, metav1.UpdateOptions{})
	require.NoError(t, err)
	r.eventually(t, "fixed policy programmed", func(w string) bool { return strings.Contains(w, `comment "shop/bad-cidr ingress rule 0"`) })
	assert.Eventually(t, func() bool {
		return strings.Contains(r.metrics(), `weft_cni_node_netpol_policies{state="invalid"} 1`)
	}, 5*time.Second, 20*time.Millisecond)
}

// TestControllerFollowsChanges: updates and deletes are written as
// partial syncs within the sync interval; a failed write is retried as a
// full sync.
func TestControllerFollowsChanges(t *testing.T) {
	k := &fakeKernel{}
	np := policy("shop", "p", sel("app", "web"), ingress(ports(tcp(80)), podPeer(sel("app", "api"))))
	r := runController(t, k, apiNamespace("shop"),
		apiPod("shop", "web", "10.244.1.10", node, map[string]string{"app": "web"}), np)
	r.eventually(t, "first sync", func(w string) bool { return strings.Contains(w, "th dport 80 accept") })

	ctx := context.Background()
	k.mu.Lock()
	k.fail = 1
	k.mu.Unlock()
	np.Spec.Ingress[0].Ports[0].Port = ptr(intstr.FromInt32(81))
	_, err := r.client.NetworkingV1().NetworkPolicies("shop").Update(ctx, np, metav1.UpdateOptions{})
	require.NoError(t, err)
	r.eventually(t, "update after a failed write", func(w string) bool { return strings.Contains(w, "th dport 81 accept") })
	_, changes := k.written()
	assert.True(t, changes[len(changes)-1].Full, "a failed write is retried as a full sync")

	_, err = r.client.CoreV1().Pods("shop").Create(ctx, apiPod("shop", "api", "10.244.3.3", "n3", map[string]string{"app": "api"}), metav1.CreateOptions{})
	require.NoError(t, err)
	r.eventually(t, "new peer", func(w string) bool { return strings.Contains(w, "{ 10.244.3.3 }") })
	_, changes = k.written()
	last := changes[len(changes)-1]
	assert.False(t, last.Full)
	assert.Zero(t, last.Rules, "a new peer only adds a set element:\n%s", last)

	require.NoError(t, r.client.NetworkingV1().NetworkPolicies("shop").Delete(ctx, "p", metav1.DeleteOptions{}))
	r.eventually(t, "delete", func(w string) bool {
		return strings.Contains(w, "delete chain inet weft-netpol "+PolicyChain(Ingress, "shop/p"))
	})

	// Status heartbeats of pods do not cause syncs.
	_, before := k.written()
	web, err := r.client.CoreV1().Pods("shop").Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	web.Status.Conditions = append(web.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue})
	_, err = r.client.CoreV1().Pods("shop").UpdateStatus(ctx, web, metav1.UpdateOptions{})
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	_, after := k.written()
	assert.Len(t, after, len(before))
}
