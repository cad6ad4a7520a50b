//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
)

// npSettle bounds how long a policy change may take to be enforced on
// every node ("within seconds"); each check retries until then.
const npSettle = 20 * time.Second

// TestNetworkPolicy checks NetworkPolicy enforcement on every node: pods
// of the same node (bridged) and of other nodes (routed), default deny,
// pod, namespace and ipBlock peers, named ports, egress with DNS, updates,
// deletes, established connections, bad input, and meshed pods.
func TestNetworkPolicy(t *testing.T) {
	ctx := context.Background()
	cs := clients(t)
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	n := len(nodes.Items)
	require.GreaterOrEqual(t, n, 2, "the policy test needs pods on at least two nodes")

	team := "np-" + rand.String(5)
	ns := newNamespace(t, "e2e-np", nil)
	peerNS := newNamespace(t, "e2e-np-peer", map[string]string{"weft-e2e-team": team})
	createAll(t, ns,
		daemonSet("server", false, podSpec(httpbinContainer())),
		daemonSet("client", false, podSpec(curlContainer())),
		deployment("other", 1, podSpec(curlContainer())),
		service("server", "server"))
	createAll(t, peerNS, daemonSet("client", false, podSpec(curlContainer())))
	servers, err := cluster.WaitPodsReady(ctx, ns, "app=server", n, 2*time.Minute)
	require.NoError(t, err)
	clientPods, err := cluster.WaitPodsReady(ctx, ns, "app=client", n, 2*time.Minute)
	require.NoError(t, err)
	others, err := cluster.WaitPodsReady(ctx, ns, "app=other", 1, 2*time.Minute)
	require.NoError(t, err)
	other := others[0]
	peers, err := cluster.WaitPodsReady(ctx, peerNS, "app=client", n, 2*time.Minute)
	require.NoError(t, err)
	np := &npCluster{ns: ns, servers: servers}

	np.expect(t, clientPods, true, "no policy: every client reaches every server")
	np.expect(t, peers, true, "no policy: other namespaces too")

	t.Run("default deny ingress in a namespace", func(t *testing.T) {
		np.apply(t, npPolicy("deny-all", nil, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}))
		np.expect(t, clientPods, false, "same namespace denied")
		np.expect(t, peers, false, "other namespace denied")
		// The kubelet's readiness probes come from the pod's own node,
		// which NetworkPolicy always allows: the servers stay Ready.
		time.Sleep(3 * time.Second)
		_, err := cluster.WaitPodsReady(ctx, ns, "app=server", n, 10*time.Second)
		assert.NoError(t, err, "probes from the node must pass a default deny")
	})

	t.Run("allow from pods with a label", func(t *testing.T) {
		np.apply(t, npPolicy("allow-clients", npServers(), nil, npFrom(nil, npLabels("app", "client"))))
		np.expect(t, clientPods, true, "app=client allowed")
		np.expect(t, []corev1.Pod{other}, false, "app=other still denied")
		np.expect(t, peers, false, "a podSelector alone means the policy's namespace")
	})

	t.Run("allow from a namespace", func(t *testing.T) {
		np.apply(t, npPolicy("allow-team", npServers(), nil, npFrom(nil,
			networkingv1.NetworkPolicyPeer{NamespaceSelector: npLabels("weft-e2e-team", team), PodSelector: npLabels("app", "client")})))
		np.expect(t, peers, true, "namespace and pod selector together")
		np.expect(t, []corev1.Pod{other}, false, "app=other still denied")
	})

	t.Run("named ports", func(t *testing.T) {
		np.delete(t, "allow-clients", "allow-team")
		np.apply(t, npPolicy("allow-http", npServers(), nil,
			npFrom([]networkingv1.NetworkPolicyPort{{Port: npPtr(intstr.FromString("http"))}}, npLabels("app", "client"))))
		np.expect(t, clientPods, true, "TCP on the port named http")
		np.expectUDP(t, clientPods[0], false, "UDP 9090 is not the named port")
		udp := corev1.ProtocolUDP
		np.apply(t, npPolicy("allow-udp", npServers(), nil,
			npFrom([]networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: npPtr(intstr.FromString("udp"))}}, npLabels("app", "client"))))
		np.expectUDP(t, clientPods[0], true, "UDP on the port named udp")
		np.delete(t, "allow-http", "allow-udp")
	})

	t.Run("ipBlock with except", func(t *testing.T) {
		np.apply(t, npPolicy("allow-block", npServers(), nil, npFrom(nil, networkingv1.NetworkPolicyPeer{
			IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{other.Status.PodIP + "/32"}}})))
		np.expect(t, clientPods, true, "inside the block")
		np.expect(t, []corev1.Pod{other}, false, "the excepted address")
		np.delete(t, "allow-block")
	})

	t.Run("egress deny with DNS allowed by an explicit rule", func(t *testing.T) {
		np.delete(t, "deny-all")
		udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
		dns := networkingv1.NetworkPolicyEgressRule{
			To: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: npLabels("kubernetes.io/metadata.name", "kube-system"), PodSelector: npLabels("k8s-app", "kube-dns")}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: npPtr(intstr.FromInt32(53))}, {Protocol: &tcp, Port: npPtr(intstr.FromInt32(53))}},
		}
		egress := npPolicy("other-egress", npLabels("app", "other"), []networkingv1.PolicyType{networkingv1.PolicyTypeEgress})
		egress.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{dns}
		np.apply(t, egress)
		url := "http://server." + ns + "/"
		_, err := eventually(npSettle, func() error {
			err := np.reaches(ctx, other, url)
			if err == nil {
				return errors.New("still reaches the server")
			}
			if strings.Contains(err.Error(), "lookup") {
				return fmt.Errorf("DNS failed, but it is allowed: %w", err)
			}
			return nil
		})
		require.NoError(t, err, "the name resolves, the connection is denied")
		np.expect(t, clientPods[:1], true, "pods the policy does not select keep their egress")

		egress.Spec.Egress = append(egress.Spec.Egress, networkingv1.NetworkPolicyEgressRule{
			To:    []networkingv1.NetworkPolicyPeer{{PodSelector: npLabels("app", "server")}},
			Ports: []networkingv1.NetworkPolicyPort{{Port: npPtr(intstr.FromString("http"))}}})
		np.apply(t, egress)
		_, err = eventually(npSettle, func() error { return np.reaches(ctx, other, url) })
		require.NoError(t, err, "egress to the server's named port through its Service name")
		np.delete(t, "other-egress")
	})

	t.Run("policy update takes effect within seconds", func(t *testing.T) {
		np.apply(t, npPolicy("deny-all", nil, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}))
		p := npPolicy("allow-one", npServers(), nil, npFrom(nil, npLabels("app", "client")))
		np.apply(t, p)
		np.expect(t, clientPods, true, "before the update")
		p.Spec.Ingress[0].From[0].PodSelector = npLabels("app", "other")
		start := time.Now()
		np.apply(t, p)
		np.expect(t, []corev1.Pod{other}, true, "after the update: app=other allowed")
		np.expect(t, clientPods, false, "after the update: app=client denied")
		took := time.Since(start)
		t.Logf("policy update enforced on every node after %v", took.Round(100*time.Millisecond))
		assert.Less(t, took, 15*time.Second)
	})

	t.Run("established connections survive an unrelated policy change", func(t *testing.T) {
		np.apply(t, npPolicy("allow-one", npServers(), nil, npFrom(nil, npLabels("app", "client"))))
		np.expect(t, clientPods, true, "allowed before")
		from, to := clientPods[0], npOtherNode(servers, clientPods[0].Spec.NodeName)
		done := make(chan error, 1)
		go func() {
			_, _, err := cluster.Exec(ctx, ns, from.Name, "curl", "curl", "-f", "-timeout", "25s",
				fmt.Sprintf("http://%s:8080/delay/12", to.Status.PodIP))
			done <- err
		}()
		time.Sleep(2 * time.Second)
		// Another allow rule for the same servers: their pod chains are
		// rewritten on every node while the request is in flight.
		np.apply(t, npPolicy("unrelated", npServers(), nil, npFrom(nil, npLabels("app", "other"))))
		np.expect(t, []corev1.Pod{other}, true, "the unrelated change is in place")
		require.NoError(t, <-done, "the long request started before the change completes")
		np.delete(t, "unrelated")
	})

	t.Run("a malformed policy is reported and skipped without disturbing others", func(t *testing.T) {
		bad := npPolicy("bad-cidr", npServers(), nil, npFrom(nil, networkingv1.NetworkPolicyPeer{
			IPBlock: &networkingv1.IPBlock{CIDR: "010.0.0.0/8"}}))
		_, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, bad, metav1.CreateOptions{})
		if apierrors.IsInvalid(err) {
			t.Logf("the API server rejects the malformed CIDR itself (strict IP validation): %v", err)
		} else {
			require.NoError(t, err)
			_, err := eventually(npSettle, func() error {
				events, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=bad-cidr"})
				if err != nil {
					return err
				}
				for _, e := range events.Items {
					if e.Reason == "InvalidNetworkPolicy" && strings.Contains(e.Message, "010.0.0.0/8") {
						return nil
					}
				}
				return errors.New("no InvalidNetworkPolicy event yet")
			})
			require.NoError(t, err, "weft-cni-node reports the malformed CIDR")
		}
		np.expect(t, clientPods, true, "the other policies are still enforced: allowed")
		np.expect(t, []corev1.Pod{other}, false, "the other policies are still enforced: denied")
	})

	t.Run("deleting the policies restores traffic", func(t *testing.T) {
		np.delete(t, "deny-all", "allow-one", "bad-cidr")
		np.expect(t, append(append([]corev1.Pod{other}, clientPods...), peers...), true, "no policy selects the servers")
	})

	t.Run("meshed pods: policy applies before the sidecar", func(t *testing.T) {
		requireMesh(t)
		meshNS, httpbin, curl := meshedApps(t, "e2e-np-mesh", true)
		require.True(t, hasSidecar(httpbin) && hasSidecar(curl), "the pods are meshed")
		mesh := &npCluster{ns: meshNS, servers: []corev1.Pod{httpbin}}
		url := "http://httpbin." + meshNS + ":8000/"
		mesh.apply(t, npPolicy("deny-all", nil, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}))
		_, err := eventually(npSettle, func() error {
			if mesh.reaches(ctx, curl, url) == nil {
				return errors.New("still reaches httpbin through the sidecars")
			}
			return nil
		})
		require.NoError(t, err, "a default deny holds for meshed pods")
		mesh.apply(t, npPolicy("allow-curl", npLabels("app", "httpbin"), nil,
			npFrom([]networkingv1.NetworkPolicyPort{{Port: npPtr(intstr.FromString("http"))}}, npLabels("app", "curl"))))
		_, err = eventually(npSettle, func() error { return mesh.reaches(ctx, curl, url) })
		require.NoError(t, err, "allowed on the app's port: mTLS from the client's sidecar to the server's passes")
	})
}

// npCluster applies policies in one namespace and checks reachability of
// its servers.
type npCluster struct {
	ns      string
	servers []corev1.Pod
}

func (c *npCluster) apply(t *testing.T, p *networkingv1.NetworkPolicy) {
	t.Helper()
	ctx := context.Background()
	api := clients(t).NetworkingV1().NetworkPolicies(c.ns)
	cur, err := api.Get(ctx, p.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, p, metav1.CreateOptions{})
	case err == nil:
		p.ResourceVersion = cur.ResourceVersion
		_, err = api.Update(ctx, p, metav1.UpdateOptions{})
	}
	require.NoError(t, err, "apply policy %s", p.Name)
}

func (c *npCluster) delete(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		err := clients(t).NetworkingV1().NetworkPolicies(c.ns).Delete(context.Background(), name, metav1.DeleteOptions{})
		if !apierrors.IsNotFound(err) {
			require.NoError(t, err, "delete policy %s", name)
		}
	}
}

// reaches makes one HTTP request from a curl pod; denied traffic times out.
func (c *npCluster) reaches(ctx context.Context, from corev1.Pod, url string) error {
	_, _, err := cluster.Exec(ctx, from.Namespace, from.Name, "curl", "curl", "-f", "-timeout", "2s", url)
	return err
}

// expect waits until every pod in from reaches every server (allowed) or
// none does, checking all pairs in parallel each round.
func (c *npCluster) expect(t *testing.T, from []corev1.Pod, allowed bool, what string) {
	t.Helper()
	ctx := context.Background()
	_, err := eventually(npSettle, func() error {
		var mu sync.Mutex
		var wrong []string
		var wg sync.WaitGroup
		for _, f := range from {
			for _, s := range c.servers {
				wg.Go(func() {
					err := c.reaches(ctx, f, fmt.Sprintf("http://%s:8080/", s.Status.PodIP))
					if (err == nil) != allowed {
						mu.Lock()
						wrong = append(wrong, fmt.Sprintf("%s/%s (%s) → %s (%s): %v", f.Namespace, f.Name, f.Spec.NodeName, s.Name, s.Spec.NodeName, err))
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		if len(wrong) > 0 {
			return fmt.Errorf("want allowed=%v:\n%s", allowed, strings.Join(wrong, "\n"))
		}
		return nil
	})
	require.NoError(t, err, what)
}

// expectUDP waits until a datagram from a pod to each server's UDP port
// is answered (allowed) or not. Each try uses a new source port, so no
// conntrack entry of an earlier try is reused.
func (c *npCluster) expectUDP(t *testing.T, from corev1.Pod, allowed bool, what string) {
	t.Helper()
	_, err := eventually(npSettle, func() error {
		for _, s := range c.servers {
			_, _, err := cluster.Exec(context.Background(), from.Namespace, from.Name, "curl", "curl", "-udp", "-timeout", "2s", s.Status.PodIP+":9090")
			if (err == nil) != allowed {
				return fmt.Errorf("UDP %s → %s: want allowed=%v, got %v", from.Name, s.Name, allowed, err)
			}
		}
		return nil
	})
	require.NoError(t, err, what)
}

// npPolicy is a policy selecting pods (nil: all pods of the namespace).
func npPolicy(name string, pods *metav1.LabelSelector, types []networkingv1.PolicyType, ingress ...networkingv1.NetworkPolicyIngressRule) *networkingv1.NetworkPolicy {
	if pods == nil {
		pods = &metav1.LabelSelector{}
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: *pods, PolicyTypes: types, Ingress: ingress},
	}
}

func npServers() *metav1.LabelSelector { return npLabels("app", "server") }

func npLabels(k, v string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
}

// npFrom is an ingress rule from pods matching sel (or from peer).
func npFrom[P *metav1.LabelSelector | networkingv1.NetworkPolicyPeer](ports []networkingv1.NetworkPolicyPort, peer P) networkingv1.NetworkPolicyIngressRule {
	var p networkingv1.NetworkPolicyPeer
	switch v := any(peer).(type) {
	case *metav1.LabelSelector:
		p.PodSelector = v
	case networkingv1.NetworkPolicyPeer:
		p = v
	}
	return networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{p}, Ports: ports}
}

// npOtherNode picks a pod that is not on node, so a check crosses nodes.
func npOtherNode(pods []corev1.Pod, node string) corev1.Pod {
	for _, p := range pods {
		if p.Spec.NodeName != node {
			return p
		}
	}
	return pods[0]
}

func npPtr[T any](v T) *T { return &v }
