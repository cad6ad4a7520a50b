package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/cni-plugin/internal/nstest"
	"github.com/weftmesh/weft/cni-plugin/redirect"
)

func meshedStatus() annotation.SidecarStatus {
	return annotation.SidecarStatus{
		Version: annotation.StatusVersion, Image: "weft.local/sidecar:dev", Revision: annotation.DefaultRevision,
		ProxyUID: annotation.ProxyUID, ProxyGID: annotation.ProxyGID,
		OutboundPort: annotation.OutboundCapturePort, InboundPort: annotation.InboundCapturePort,
		IncludeInboundPorts: annotation.CaptureAllInbound, ExcludeInboundPorts: annotation.RequiredExcludedInboundPorts(),
	}
}

func testPod(name, status string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: k8stypes.UID("uid-" + name)}}
	if status != "" {
		p.Annotations = map[string]string{annotation.StatusAnnotation: status}
	}
	return p
}

func TestMeshedPodAddCheckDel(t *testing.T) {
	h := newHarness(t)
	st := meshedStatus()
	h.api.add(testPod("web", st.String()))
	pod := nstest.NewT(t, "pod")
	list := h.conflist("1.0.0", h.redirectEntry(h.kubeconfig, ""))
	rc := rt("c1", pod, "default", "web")

	res, err := h.add(list, rc)
	require.NoError(t, err)
	require.Len(t, res.Interfaces, 3, "weft-bridge's result, passed through")
	assert.Equal(t, "10.244.1.2/24", res.IPs[0].Address.String())
	plan, err := redirect.PlanFor(st)
	require.NoError(t, err)
	assert.Equal(t, plan.SaveText(), natSave(t, pod), "exactly the planned rules")

	// The app's connection to the node lands on the sidecar's outbound
	// listener instead.
	var ln net.Listener
	require.NoError(t, pod.Do(func(ns.NetNS) (err error) { ln, err = net.Listen("tcp4", ":15001"); return err }))
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			fmt.Fprintln(c, "outbound")
			c.Close()
		}
	}()
	require.NoError(t, pod.Do(func(ns.NetNS) error {
		c, err := net.DialTimeout("tcp4", "10.244.1.1:80", 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		line, err := bufio.NewReader(c).ReadString('\n')
		assert.Equal(t, "outbound\n", line)
		return err
	}))

	require.NoError(t, h.check(list, rc))
	_, err = pod.Run("iptables", "-t", "nat", "-F", "OUTPUT")
	require.NoError(t, err)
	require.ErrorContains(t, h.check(list, rc), "pod default/web lacks redirect rules: jump OUTPUT -> WEFT-OUTPUT")

	require.NoError(t, h.del(list, rc))
	require.NoError(t, h.del(list, rc), "second DEL succeeds")
}

func TestUnmeshedPodIsLeftAlone(t *testing.T) {
	h := newHarness(t)
	h.api.add(testPod("plain", ""))
	list := h.conflist("1.1.0", h.redirectEntry(h.kubeconfig, ""))

	pod := nstest.NewT(t, "pod")
	res, err := h.add(list, rt("c1", pod, "default", "plain"))
	require.NoError(t, err)
	assert.Equal(t, "10.244.1.2/24", res.IPs[0].Address.String())
	assert.NotContains(t, natSave(t, pod), "WEFT")
	require.NoError(t, h.check(list, rt("c1", pod, "default", "plain")))
	assert.Equal(t, 2, h.api.calls, "ADD and CHECK each looked the pod up")

	// Not started by a Kubernetes runtime: no pod to look up.
	other := nstest.NewT(t, "pod")
	_, err = h.add(list, rt("c2", other, "", ""))
	require.NoError(t, err)
	assert.NotContains(t, natSave(t, other), "WEFT")
	assert.Equal(t, 2, h.api.calls)
	require.NoError(t, h.del(list, rt("c1", pod, "default", "plain")))
	require.NoError(t, h.del(list, rt("c2", other, "", "")))
}

// TestResultPassedThrough: whatever weft-redirect does, its result is its
// prevResult.
func TestResultPassedThrough(t *testing.T) {
	h := newHarness(t)
	h.api.add(testPod("web", meshedStatus().String()))
	h.api.add(testPod("plain", ""))
	for _, name := range []string{"web", "plain", ""} {
		t.Run("pod "+name, func(t *testing.T) {
			pod := nstest.NewT(t, "pod")
			prev := prevResult(pod.Path())
			out, err := h.addOne(h.redirectEntry(h.kubeconfig, `,"prevResult":`+prev), rt("c-"+name, pod, "default", name))
			require.NoError(t, err)
			var want, got current.Result
			require.NoError(t, json.Unmarshal([]byte(prev), &want))
			require.NoError(t, json.Unmarshal(out, &got))
			assert.Equal(t, want, got)
		})
	}
}

func prevResult(netns string) string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","interfaces":[{"name":"weft0","mac":"0a:58:0a:f4:01:01"},`+
		`{"name":"eth0","mac":"0a:58:0a:f4:01:02","sandbox":%q}],"ips":[{"interface":1,"address":"10.244.1.2/24",`+
		`"gateway":"10.244.1.1"}],"routes":[{"dst":"0.0.0.0/0","gw":"10.244.1.1"}],"dns":{"nameservers":["10.96.0.10"]}}`, netns)
}

// TestAddFailuresLeaveNetnsUntouched: each bad input fails ADD with a
// message naming the problem, before anything in the pod changes.
func TestAddFailuresLeaveNetnsUntouched(t *testing.T) {
	h := newHarness(t)
	st := meshedStatus()
	h.api.add(testPod("web", st.String()))
	h.api.add(testPod("broken", "{"))
	st.Version = 2
	h.api.add(testPod("future", st.String()))

	var closed net.Listener
	require.NoError(t, h.node.Do(func(ns.NetNS) (err error) { closed, err = net.Listen("tcp4", "127.0.0.1:0"); return err }))
	unreachable := "https://" + closed.Addr().String()
	require.NoError(t, closed.Close())
	unreachableKC := writeKubeconfig(t, unreachable, h.caPEM, testToken)
	wrongTokenKC := writeKubeconfig(t, h.server, h.caPEM, "stale-token")

	tests := []struct {
		name, entry, pod, uid string
		hang                  bool
		want                  []string
	}{
		{name: "no prevResult", entry: h.redirectEntry(h.kubeconfig, ""), pod: "web",
			want: []string{"weft-redirect needs a prevResult: chain it after weft-bridge in the conflist"}},
		{name: "API server unreachable", entry: h.redirectEntry(unreachableKC, ""), pod: "web",
			want: []string{"look up pod default/web at " + unreachable + " (kubeconfig " + unreachableKC + ")", "connection refused"}},
		{name: "API server hangs", entry: h.redirectEntry(h.kubeconfig, `,"apiTimeout":"300ms"`), pod: "web", hang: true,
			want: []string{"look up pod default/web", "no answer within 300ms"}},
		{name: "kubeconfig missing", entry: h.redirectEntry("/nonexistent/weft-kubeconfig", ""), pod: "web",
			want: []string{"load kubeconfig /nonexistent/weft-kubeconfig", "no such file"}},
		{name: "token not accepted", entry: h.redirectEntry(wrongTokenKC, ""), pod: "web",
			want: []string{"look up pod default/web", "Unauthorized"}},
		{name: "pod not found", entry: h.redirectEntry(h.kubeconfig, ""), pod: "ghost",
			want: []string{"look up pod default/ghost", `pods "ghost" not found`}},
		{name: "sandbox of another pod", entry: h.redirectEntry(h.kubeconfig, ""), pod: "web", uid: "uid-old",
			want: []string{"pod default/web is uid uid-web, the sandbox is for uid uid-old"}},
		{name: "malformed status", entry: h.redirectEntry(h.kubeconfig, ""), pod: "broken",
			want: []string{"pod default/broken: decode sidecar.weft.dev/status"}},
		{name: "status of an unknown version", entry: h.redirectEntry(h.kubeconfig, ""), pod: "future",
			want: []string{"pod default/future: invalid sidecar.weft.dev/status: unsupported version 2"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := nstest.NewT(t, "pod")
			before := podState(t, pod)
			entry := tt.entry
			if tt.name != "no prevResult" {
				entry = strings.TrimSuffix(entry, "}") + `,"prevResult":` + prevResult(pod.Path()) + "}"
			}
			rc := rt(fmt.Sprint("c", i), pod, "default", tt.pod)
			if tt.uid != "" {
				rc.Args = append(rc.Args, [2]string{"K8S_POD_UID", tt.uid})
			}
			h.api.mu.Lock()
			h.api.hang = tt.hang
			h.api.mu.Unlock()
			start := time.Now()
			_, err := h.addOne(entry, rc)
			require.Error(t, err)
			t.Logf("ADD failed with: %v", err)
			for _, w := range tt.want {
				assert.ErrorContains(t, err, w)
			}
			assert.Less(t, time.Since(start), 3*time.Second, "bounded by the API timeout")
			assert.Equal(t, before, podState(t, pod), "netns untouched")
		})
	}
}

func TestStatus(t *testing.T) {
	h := newHarness(t)
	ok := h.conflist("1.1.0", h.redirectEntry(h.kubeconfig, ""))
	require.NoError(t, h.inNode(func() error { return h.cni.GetStatusNetworkList(t.Context(), ok) }))
	broken := h.conflist("1.1.0", h.redirectEntry("/nonexistent/weft-kubeconfig", ""))
	err := h.inNode(func() error { return h.cni.GetStatusNetworkList(t.Context(), broken) })
	var cniErr *types.Error
	require.ErrorAs(t, err, &cniErr)
	assert.Equal(t, types.ErrPluginNotAvailable, cniErr.Code)
	assert.Contains(t, cniErr.Msg, "kubeconfig /nonexistent/weft-kubeconfig unusable")
}
