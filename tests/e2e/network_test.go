//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// daemonSet runs one pod of spec per node, labelled app=name.
func daemonSet(name string, hostNetwork bool, spec corev1.PodSpec) *appsv1.DaemonSet {
	labels := map[string]string{"app": name}
	spec.HostNetwork = hostNetwork
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}

// echoReply is the part of httpbin's answer the tests read.
type echoReply struct {
	Hostname string `json:"hostname"`
	Node     string `json:"node"`
	Client   string `json:"client"`
}

// get runs the curl sample in pod and decodes httpbin's echo.
func get(ctx context.Context, pod corev1.Pod, url string) (echoReply, error) {
	out, _, err := cluster.Exec(ctx, pod.Namespace, pod.Name, "curl", "curl", "-timeout", "5s", url)
	if err != nil {
		return echoReply{}, err
	}
	var r echoReply
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return echoReply{}, fmt.Errorf("decode %q: %w", out, err)
	}
	return r, nil
}

// TestPodNetwork checks the base pod network on every node: pod IPs come
// from the node's podCIDR, pods reach pods on every node (same and other),
// pods reach nodes, and nodes reach pods on other nodes.
func TestPodNetwork(t *testing.T) {
	ctx := context.Background()
	cs := clients(t)
	ns := newNamespace(t, "e2e-net", nil)
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	n := len(nodes.Items)
	require.GreaterOrEqual(t, n, 2, "the pod network test needs at least two nodes")

	createAll(t, ns,
		daemonSet("server", false, podSpec(httpbinContainer())),
		daemonSet("client", false, podSpec(curlContainer())),
		daemonSet("hostclient", true, podSpec(curlContainer())))
	servers, err := cluster.WaitPodsReady(ctx, ns, "app=server", n, 2*time.Minute)
	require.NoError(t, err)
	clients, err := cluster.WaitPodsReady(ctx, ns, "app=client", n, 2*time.Minute)
	require.NoError(t, err)
	hostClients, err := cluster.WaitPodsReady(ctx, ns, "app=hostclient", n, 2*time.Minute)
	require.NoError(t, err)

	t.Run("pod IPs come from the node's podCIDR", func(t *testing.T) {
		cidrs := map[string]netip.Prefix{}
		for _, node := range nodes.Items {
			p, err := netip.ParsePrefix(node.Spec.PodCIDR)
			require.NoError(t, err, "node %s podCIDR", node.Name)
			cidrs[node.Name] = p
		}
		for _, pod := range append(servers, clients...) {
			ip, err := netip.ParseAddr(pod.Status.PodIP)
			require.NoError(t, err, "pod %s IP", pod.Name)
			assert.True(t, cidrs[pod.Spec.NodeName].Contains(ip), "pod %s IP %s outside %s's podCIDR %s", pod.Name, ip, pod.Spec.NodeName, cidrs[pod.Spec.NodeName])
		}
	})

	t.Run("pod to pod on every node", func(t *testing.T) {
		for _, c := range clients {
			for _, s := range servers {
				r, err := get(ctx, c, fmt.Sprintf("http://%s:8080/", s.Status.PodIP))
				if assert.NoError(t, err, "%s (%s) → %s (%s)", c.Name, c.Spec.NodeName, s.Name, s.Spec.NodeName) {
					assert.Equal(t, s.Name, r.Hostname)
					// No NAT between pods: the server sees the client's pod IP.
					assert.Equal(t, c.Status.PodIP, hostOf(r.Client), "source address seen by %s", s.Name)
				}
			}
		}
	})

	t.Run("pod to node", func(t *testing.T) {
		for _, c := range clients {
			for _, node := range nodes.Items {
				ip := internalIP(node)
				// Any HTTP answer from the kubelet (401 without credentials) proves reachability.
				_, _, err := cluster.Exec(ctx, ns, c.Name, "curl", "curl", "-k", "-timeout", "5s", fmt.Sprintf("https://%s:10250/healthz", ip))
				assert.NoError(t, err, "%s (%s) → node %s", c.Name, c.Spec.NodeName, node.Name)
			}
		}
	})

	t.Run("node to pod on other nodes", func(t *testing.T) {
		for _, h := range hostClients {
			for _, s := range servers {
				if s.Spec.NodeName == h.Spec.NodeName {
					continue
				}
				r, err := get(ctx, h, fmt.Sprintf("http://%s:8080/", s.Status.PodIP))
				if assert.NoError(t, err, "node %s → %s (%s)", h.Spec.NodeName, s.Name, s.Spec.NodeName) {
					assert.Equal(t, s.Name, r.Hostname)
				}
			}
		}
	})
}

func internalIP(n corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

func hostOf(addrPort string) string {
	ap, err := netip.ParseAddrPort(addrPort)
	if err != nil {
		return addrPort
	}
	return ap.Addr().String()
}
