package node

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric/noop"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/cni-plugin/ipam"
)

const testStatus = `{"v":1,"image":"weft.local/sidecar:dev","revision":"default","proxyUID":1337,"proxyGID":1337,` +
	`"outboundPort":15001,"inboundPort":15006,"includeInboundPorts":"*","excludeInboundPorts":[15020,15021,15090]}`

func meshedPod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name),
			Annotations: map[string]string{annotation.StatusAnnotation: testStatus}},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

// allocate records an IPAM allocation for each pod, with netns(pod) as its
// netns path, and gives the pod that address.
func allocate(t *testing.T, dir string, netns func(*corev1.Pod) string, pods ...*corev1.Pod) {
	t.Helper()
	store, err := ipam.Open(dir, NetworkName)
	require.NoError(t, err)
	rng, err := ipam.NewRange(netip.MustParsePrefix("10.244.1.0/24"), netip.Addr{})
	require.NoError(t, err)
	for _, p := range pods {
		ip, _, err := store.Allocate(rng, ipam.Attachment{ContainerID: "sandbox-" + p.Name, IfName: "eth0", Netns: netns(p)})
		require.NoError(t, err)
		p.Status.PodIP = ip.String()
	}
}

// checkerFixture is a checker over stubbed netns inspection.
type checkerFixture struct {
	c        *RedirectChecker
	client   *fake.Clientset
	recorder *record.FakeRecorder
	missing  map[string][]string // netns path -> what it lacks
	fail     map[string]error
}

func newCheckerFixture(t *testing.T, repair RepairMode, pods ...*corev1.Pod) *checkerFixture {
	t.Helper()
	cfg := testConfig(t)
	path := func(p *corev1.Pod) string { return "/var/run/netns/test-" + p.Name }
	allocate(t, cfg.IPAMDataDir, path, pods...)
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	objs := make([]runtime.Object, 0, len(pods))
	for _, p := range pods {
		require.NoError(t, indexer.Add(p))
		objs = append(objs, p.DeepCopy())
	}
	metrics, err := NewMetrics(noop.NewMeterProvider())
	require.NoError(t, err)
	f := &checkerFixture{client: fake.NewClientset(objs...), recorder: record.NewFakeRecorder(20),
		missing: map[string][]string{}, fail: map[string]error{}}
	f.c = NewRedirectChecker(cfg, RedirectConfig{Enabled: true, HostCNIConfDir: "/etc/cni/net.d", Repair: repair, CheckPeriod: time.Minute},
		f.client, metrics)
	f.c.recorder, f.c.pods = f.recorder, corelisters.NewPodLister(indexer)
	f.c.inspect = func(netns string) ([]string, error) { return f.missing[netns], f.fail[netns] }
	return f
}

func (f *checkerFixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestRedirectCheckerReports(t *testing.T) {
	good, broken, plain := meshedPod("good", "n1"), meshedPod("broken", "n1"), meshedPod("plain", "n1")
	delete(plain.Annotations, annotation.StatusAnnotation)
	other, hostnet, gone := meshedPod("other", "n2"), meshedPod("hostnet", "n1"), meshedPod("gone", "n1")
	hostnet.Spec.HostNetwork = true
	pods := []*corev1.Pod{good, broken, plain, other, hostnet, gone}
	f := newCheckerFixture(t, RepairReport, pods...)
	lacks := []string{"chain WEFT-OUTPUT", "jump OUTPUT -> WEFT-OUTPUT"}
	for _, p := range []*corev1.Pod{broken, plain, other, hostnet} {
		f.missing["/var/run/netns/test-"+p.Name] = lacks
	}
	f.fail["/var/run/netns/test-gone"] = ns.NSPathNotExistErr{}
	ctx := context.Background()

	require.NoError(t, f.c.check(ctx))
	assert.Equal(t, []string{"Warning RedirectRulesMissing Network namespace lacks Weft's redirect rules " +
		"(chain WEFT-OUTPUT, jump OUTPUT -> WEFT-OUTPUT): the pod's traffic bypasses its sidecar; " +
		"delete the pod to restart it with the rules (weft-cni-node runs with --repair=report)."}, f.events())
	assert.Equal(t, int64(1), f.c.metrics.missingPods.Load())
	_, err := f.client.CoreV1().Pods("default").Get(ctx, "broken", metav1.GetOptions{})
	require.NoError(t, err, "report mode deletes nothing")

	require.NoError(t, f.c.check(ctx))
	assert.Empty(t, f.events(), "reported once per pod")
	assert.Equal(t, int64(1), f.c.metrics.missingPods.Load())

	delete(f.missing, "/var/run/netns/test-broken")
	require.NoError(t, f.c.check(ctx))
	assert.Equal(t, int64(0), f.c.metrics.missingPods.Load(), "rules back")
	f.missing["/var/run/netns/test-broken"] = lacks
	require.NoError(t, f.c.check(ctx))
	assert.Len(t, f.events(), 1, "a new episode is reported again")

	f.fail["/var/run/netns/test-good"] = errors.New("iptables broke")
	err = f.c.check(ctx)
	require.ErrorContains(t, err, "inspect pod default/good (netns /var/run/netns/test-good): iptables broke")
}

func TestRedirectCheckerRestarts(t *testing.T) {
	broken, static, recreated := meshedPod("broken", "n1"), meshedPod("static", "n1"), meshedPod("recreated", "n1")
	static.Annotations[mirrorPodAnnotation] = "hash"
	f := newCheckerFixture(t, RepairRestart, broken, static, recreated)
	for _, p := range []*corev1.Pod{broken, static, recreated} {
		f.missing["/var/run/netns/test-"+p.Name] = []string{"chain WEFT-INBOUND"}
	}
	// The API server already has a new pod of that name: the cache lags.
	ctx := context.Background()
	fresh := recreated.DeepCopy()
	fresh.UID = "uid-new"
	_, err := f.client.CoreV1().Pods("default").Update(ctx, fresh, metav1.UpdateOptions{})
	require.NoError(t, err)

	require.NoError(t, f.c.check(ctx))
	events := strings.Join(f.events(), "\n")
	assert.Contains(t, events, "deleting the pod so its owner recreates it")
	assert.Contains(t, events, "static pod: restart it on the node")
	assert.Equal(t, 2, strings.Count(events, "RedirectRulesMissing"), "the recreated pod is not reported")
	_, err = f.client.CoreV1().Pods("default").Get(ctx, "broken", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "broken pod deleted")
	for _, name := range []string{"static", "recreated"} {
		_, err = f.client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		assert.NoError(t, err, name)
	}
}

func TestRedirectConfig(t *testing.T) {
	ok := RedirectConfig{Enabled: true, HostCNIConfDir: "/etc/cni/net.d", Repair: RepairReport, CheckPeriod: time.Minute}
	require.NoError(t, ok.Validate())
	require.NoError(t, RedirectConfig{}.Validate(), "disabled: nothing to check")
	bad := RedirectConfig{Enabled: true, HostCNIConfDir: "etc", Repair: "fix", CheckPeriod: time.Millisecond}
	assert.EqualError(t, bad.Validate(), `--host-cni-conf-dir "etc" is not an absolute path
--repair "fix": want report or restart
--redirect-check-period 1ms is shorter than 1s`)
}

// TestBuildConflistWithRedirect pins the conflist weft-cni-node writes
// with --redirect (the default).
func TestBuildConflistWithRedirect(t *testing.T) {
	entry, err := RedirectPluginEntry(RedirectConfig{Enabled: true, HostCNIConfDir: "/etc/cni/net.d"})
	require.NoError(t, err)
	c := baseConflist()
	c.Chained = []json.RawMessage{entry}
	got, err := BuildConflist(c)
	require.NoError(t, err)
	golden(t, "10-weft-redirect.conflist", got)
	list, err := libcni.ConfListFromBytes(got)
	require.NoError(t, err)
	require.Len(t, list.Plugins, 2)
	assert.Equal(t, "weft-redirect", list.Plugins[1].Network.Type)
	assert.Contains(t, string(list.Plugins[1].Bytes), `"kubeconfig":"/etc/cni/net.d/weft-kubeconfig"`)
}
