package proxystatus

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/meshctl/internal/golden"
	"github.com/weftmesh/weft/meshctl/output"
	"github.com/weftmesh/weft/pilot/xds"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func types(states map[string]xds.TypeStatus) []xds.TypeStatus {
	var out []xds.TypeStatus
	for _, t := range Types {
		st, ok := states[t]
		if !ok {
			st = xds.TypeStatus{State: xds.Synced, Version: "v1", Acked: "v1", Resources: 3}
		}
		st.Type = t
		out = append(out, st)
	}
	return out
}

func meshedPod(ns, name, image string, started bool) corev1.Pod {
	st := annotation.SidecarStatus{Version: 1, Image: image, Revision: "default"}
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{annotation.StatusAnnotation: st.String()}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, InitContainerStatuses: []corev1.ContainerStatus{
			{Name: "weft-sidecar", Started: &started}}},
	}
}

// snapshot has one proxy of each kind: synced, stale for 5s, stale for
// 3 minutes, nacked, and a meshed pod that never connected.
func snapshot() Snapshot {
	proxy := func(ns, pod string, t map[string]xds.TypeStatus) xds.ProxyStatus {
		return xds.ProxyStatus{NodeID: pod + "." + ns, Namespace: ns, Pod: pod, Identity: "spiffe://cluster.local/ns/" + ns + "/sa/default",
			Delta: true, ConnectedAt: now.Add(-time.Hour), Types: types(t)}
	}
	return Snapshot{
		Pilots: []PilotStatus{{Pilot: "weft-pilot-7d4b9-x2k", Proxies: []xds.ProxyStatus{
			proxy("shop", "web-1", nil),
			proxy("shop", "web-2", map[string]xds.TypeStatus{"EDS": {State: xds.Stale, Version: "v2", Sent: "v2", Acked: "v1", LastPush: now.Add(-5 * time.Second)}}),
			proxy("shop", "cart-1", map[string]xds.TypeStatus{"CDS": {State: xds.Stale, Version: "v3", Acked: "v2", LastPush: now.Add(-3 * time.Minute)}}),
			proxy("pay", "api-1", map[string]xds.TypeStatus{"LDS": {State: xds.NACKed, Version: "v4", Sent: "v4", Acked: "v3",
				Error: `error adding listener '0.0.0.0:15006': multiple filter chains with the same matching rules are defined`}}),
		}}},
		Pods: []corev1.Pod{
			meshedPod("shop", "web-1", "weft.local/sidecar:1.2.0", true),
			meshedPod("shop", "web-2", "weft.local/sidecar:1.2.0", true),
			meshedPod("shop", "cart-1", "weft.local/sidecar:1.1.0", true),
			meshedPod("pay", "api-1", "weft.local/sidecar:1.2.0", true),
			meshedPod("pay", "worker-1", "weft.local/sidecar:1.2.0", true),
			meshedPod("pay", "starting-1", "weft.local/sidecar:1.2.0", false),
		},
	}
}

func TestBuildGolden(t *testing.T) {
	rep := Build(snapshot(), Options{Now: now, StaleAfter: time.Minute})
	assert.Equal(t, 3, rep.Problems(), "cart-1 stale 3m, api-1 NACKED, worker-1 not connected")
	for _, f := range []output.Format{output.Table, output.JSON, output.YAML} {
		var b bytes.Buffer
		require.NoError(t, output.Print(&b, f, rep))
		golden.Check(t, "status."+string(f), b.Bytes())
	}
}

func TestFilters(t *testing.T) {
	rep := Build(snapshot(), Options{Now: now, Namespace: "pay"})
	require.Len(t, rep.Proxies, 2)
	assert.Equal(t, "api-1.pay", rep.Proxies[0].Name)
	assert.False(t, rep.Proxies[1].Connected)

	rep = Build(snapshot(), Options{Now: now, Pod: "web-2.shop"})
	require.Len(t, rep.Proxies, 1)
	assert.Equal(t, "STALE", rep.Proxies[0].Types[2].State)
	assert.Equal(t, "5s", rep.Proxies[0].Types[2].Age)
	assert.Zero(t, rep.Problems(), "a short STALE is normal")
}

func TestNoProxies(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, Build(Snapshot{}, Options{Now: now}).WriteTable(&b))
	assert.Contains(t, b.String(), "no meshed pods")
}
