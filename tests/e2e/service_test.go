//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestServices is the Service matrix a kube-proxy user relies on, checked
// from pods and from nodes on every node: ClusterIP, DNS, NodePort, session
// affinity, traffic policies, no-endpoint REJECT, hairpin, scaling and UDP.
func TestServices(t *testing.T) {
	ctx := context.Background()
	cs := clients(t)
	ns := newNamespace(t, "e2e-svc", nil)
	nodeList, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	nodes := nodeList.Items
	n := len(nodes)
	require.GreaterOrEqual(t, n, 2)
	lonelyNode := nodes[0].Name

	hairpin := podSpec(httpbinContainer(), curlContainer())
	lonely := podSpec(httpbinContainer())
	lonely.NodeSelector = map[string]string{"kubernetes.io/hostname": lonelyNode}
	createAll(t, ns,
		daemonSet("server", false, podSpec(httpbinContainer())),
		daemonSet("client", false, podSpec(curlContainer())),
		daemonSet("hostclient", true, podSpec(curlContainer())),
		deployment("hairpin", 1, hairpin),
		deployment("lonely", 1, lonely),
		deployment("scaler", 1, podSpec(httpbinContainer())),
		service("clusterip", "server"),
		service("nodeport", "server", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }),
		service("affinity", "server", func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }),
		service("itp-local", "server", func(s *corev1.Service) {
			local := corev1.ServiceInternalTrafficPolicyLocal
			s.Spec.InternalTrafficPolicy = &local
		}),
		// A health-check node port is allocated for LoadBalancer Services
		// with eTP=Local; with no load-balancer controller it stays pending
		// but gets its node ports, which is what is tested.
		service("etp-local", "lonely", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}),
		service("empty", "nobody"),
		service("hairpin", "hairpin"),
		service("scaler", "scaler"),
	)
	_, err = cluster.WaitPodsReady(ctx, ns, "app=server", n, 2*time.Minute)
	require.NoError(t, err)
	podClients, err := cluster.WaitPodsReady(ctx, ns, "app=client", n, 2*time.Minute)
	require.NoError(t, err)
	hostClients, err := cluster.WaitPodsReady(ctx, ns, "app=hostclient", n, 2*time.Minute)
	require.NoError(t, err)
	hairpinPods, err := cluster.WaitPodsReady(ctx, ns, "app=hairpin", 1, 2*time.Minute)
	require.NoError(t, err)
	_, err = cluster.WaitPodsReady(ctx, ns, "app=lonely", 1, 2*time.Minute)
	require.NoError(t, err)
	svc := func(name string) *corev1.Service {
		s, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		return s
	}
	servers := podNodes(t, ns, "app=server")

	t.Run("ClusterIP from pods and nodes on every node", func(t *testing.T) {
		// Pods Ready is not yet endpoints programmed (EndpointSlice
		// controller, then weft-proxy's sync): wait, within seconds, until
		// every client's requests spread over endpoints on its own node and
		// on others.
		url := fmt.Sprintf("http://%s/", svc("clusterip").Spec.ClusterIP)
		for _, c := range append(append([]corev1.Pod{}, podClients...), hostClients...) {
			var s summary
			took, err := eventually(20*time.Second, func() error {
				var err error
				if s, err = load(ctx, c, "curl", 30, url); err != nil {
					return err
				}
				if s.Codes["200"] != 30 {
					return fmt.Errorf("codes %v errors %v", s.Codes, s.Errors)
				}
				sameNode, otherNode := 0, 0
				for pod, n := range s.ServedBy {
					if servers[pod] == c.Spec.NodeName {
						sameNode += n
					} else {
						otherNode += n
					}
				}
				if sameNode == 0 || otherNode == 0 {
					return fmt.Errorf("served by %v: want endpoints on %s and on other nodes", s.ServedBy, c.Spec.NodeName)
				}
				return nil
			})
			require.NoError(t, err, "from %s on %s", c.Name, c.Spec.NodeName)
			t.Logf("from %s on %s: 30×200 spread over %s after %v", c.Name, c.Spec.NodeName, keys(s.ServedBy), took.Round(100*time.Millisecond))
		}
	})

	t.Run("DNS names resolve", func(t *testing.T) {
		for _, name := range []string{"clusterip", "clusterip." + ns, "clusterip." + ns + ".svc.cluster.local"} {
			s, err := load(ctx, podClients[0], "curl", 5, "http://"+name+"/")
			require.NoError(t, err)
			assert.Equal(t, 5, s.Codes["200"], "http://%s/: codes %v errors %v", name, s.Codes, s.Errors)
		}
	})

	t.Run("NodePort on every node from every node and from pods", func(t *testing.T) {
		port := svc("nodeport").Spec.Ports[0].NodePort
		for _, c := range append([]corev1.Pod{hostClients[0], hostClients[1]}, podClients[0]) {
			for _, node := range nodes {
				url := fmt.Sprintf("http://%s:%d/", internalIP(node), port)
				s, err := eventuallyLoad(ctx, c, 10, url)
				require.NoError(t, err)
				assert.Equal(t, 10, s.Codes["200"], "%s (%s) → %s: codes %v errors %v", c.Name, c.Spec.NodeName, url, s.Codes, s.Errors)
			}
		}
	})

	t.Run("session affinity sticks to one endpoint", func(t *testing.T) {
		url := fmt.Sprintf("http://%s/", svc("affinity").Spec.ClusterIP)
		for _, c := range podClients {
			// One request first: it records the client's endpoint. (The
			// first connections of a concurrent burst race each other
			// through the random choice — kube-proxy's `-m recent`
			// affinity has the same window — and then all stick to the
			// first endpoint in the Service's chain that recorded them.)
			first, err := eventuallyLoad(ctx, c, 1, url)
			require.NoError(t, err)
			s, err := eventuallyLoad(ctx, c, 20, url)
			require.NoError(t, err)
			assert.Equal(t, 20, s.Codes["200"])
			assert.Len(t, s.ServedBy, 1, "from %s: served by %s", c.Name, keys(s.ServedBy))
			for pod := range s.ServedBy {
				assert.Contains(t, first.ServedBy, pod, "from %s: the endpoint of the first request keeps the client", c.Name)
			}
		}
	})

	t.Run("internalTrafficPolicy Local stays on the node", func(t *testing.T) {
		url := fmt.Sprintf("http://%s/", svc("itp-local").Spec.ClusterIP)
		for _, c := range podClients {
			s, err := eventuallyLoad(ctx, c, 10, url)
			require.NoError(t, err)
			assert.Equal(t, 10, s.Codes["200"])
			for pod := range s.ServedBy {
				assert.Equal(t, c.Spec.NodeName, servers[pod], "client on %s served by %s on %s", c.Spec.NodeName, pod, servers[pod])
			}
		}
	})

	t.Run("externalTrafficPolicy Local (LoadBalancer): only nodes with endpoints answer, health check says so", func(t *testing.T) {
		s := svc("etp-local")
		port, hc := s.Spec.Ports[0].NodePort, s.Spec.HealthCheckNodePort
		require.NotZero(t, hc, "eTP=Local NodePort Service must get a health check node port")
		for _, node := range nodes {
			url := fmt.Sprintf("http://%s:%d/", internalIP(node), port)
			hcURL := fmt.Sprintf("http://%s:%d/", internalIP(node), hc)
			// Call each node from another node: traffic a node sends to its
			// own node port is LOCAL and, as in kube-proxy, may use any endpoint.
			from := otherNode(hostClients, node.Name)
			if node.Name == lonelyNode {
				sum, err := eventuallyLoad(ctx, from, 5, url)
				require.NoError(t, err)
				assert.Equal(t, 5, sum.Codes["200"], "node with the endpoint: %v %v", sum.Codes, sum.Errors)
				_, _, err = cluster.Exec(ctx, ns, from.Name, "curl", "curl", "-f", "-timeout", "3s", hcURL)
				assert.NoError(t, err, "health check on the endpoint's node must answer 200")
				continue
			}
			sum, err := load(ctx, from, "curl", 3, url, "-timeout", "1s")
			require.NoError(t, err)
			assert.Zero(t, sum.Codes["200"], "%s → node %s (no local endpoint) served %v", from.Spec.NodeName, node.Name, sum.Codes)
			_, _, err = cluster.Exec(ctx, ns, from.Name, "curl", "curl", "-f", "-timeout", "3s", hcURL)
			assert.Error(t, err, "health check on %s (no endpoint) must not answer 200", node.Name)
		}
	})

	t.Run("no endpoints: rejected at once, not timed out", func(t *testing.T) {
		url := fmt.Sprintf("http://%s/", svc("empty").Spec.ClusterIP)
		start := time.Now()
		_, _, err := cluster.Exec(ctx, ns, podClients[0].Name, "curl", "curl", "-timeout", "5s", url)
		took := time.Since(start)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "connection refused")
		assert.Less(t, took, 3*time.Second)
	})

	t.Run("hairpin: a pod reaches itself through its Service", func(t *testing.T) {
		s, err := eventuallyLoad(ctx, hairpinPods[0], 5, fmt.Sprintf("http://%s/", svc("hairpin").Spec.ClusterIP))
		require.NoError(t, err)
		assert.Equal(t, map[string]int{hairpinPods[0].Name: 5}, s.ServedBy, "codes %v errors %v", s.Codes, s.Errors)
	})

	t.Run("scaling up and down updates reachability within seconds", func(t *testing.T) {
		url := fmt.Sprintf("http://%s/", svc("scaler").Spec.ClusterIP)
		scale(t, ns, "scaler", 3)
		took, err := eventually(60*time.Second, func() error {
			s, err := load(ctx, podClients[0], "curl", 30, url)
			if err != nil {
				return err
			}
			if len(s.ServedBy) != 3 || s.Codes["200"] != 30 {
				return fmt.Errorf("served by %s, codes %v", keys(s.ServedBy), s.Codes)
			}
			return nil
		})
		require.NoError(t, err, "all 3 replicas serving")
		t.Logf("scale 1→3: all replicas serving after %v (includes pod start)", took.Round(100*time.Millisecond))
		scale(t, ns, "scaler", 0)
		took, err = eventually(30*time.Second, func() error {
			_, _, err := cluster.Exec(ctx, ns, podClients[0].Name, "curl", "curl", "-timeout", "2s", url)
			if err == nil || !strings.Contains(err.Error(), "connection refused") {
				return fmt.Errorf("still served or not rejected: %v", err)
			}
			return nil
		})
		require.NoError(t, err, "scaled to zero must reject")
		t.Logf("scale →0: rejected after %v", took.Round(100*time.Millisecond))
	})

	t.Run("UDP keeps working after its endpoint changes", func(t *testing.T) {
		target := fmt.Sprintf("%s:9090", svc("scaler").Spec.ClusterIP)
		scale(t, ns, "scaler", 1)
		_, err := cluster.WaitPodsReady(ctx, ns, "app=scaler", 1, time.Minute)
		require.NoError(t, err)
		var first string
		_, err = eventually(20*time.Second, func() error {
			var err error
			first, err = udpFrom(ctx, podClients[0], target)
			return err
		})
		require.NoError(t, err)
		require.NoError(t, cs.CoreV1().Pods(ns).Delete(ctx, first, metav1.DeleteOptions{}))
		var second string
		took, err := eventually(60*time.Second, func() error {
			var err error
			if second, err = udpFrom(ctx, podClients[0], target); err != nil {
				return err
			}
			if second == first {
				return fmt.Errorf("still answered by deleted pod %s", first)
			}
			return nil
		})
		require.NoError(t, err, "same 5-tuple must reach the replacement pod (stale conntrack entry removed)")
		t.Logf("UDP from the same source port reached the new endpoint %s after %v", second, took.Round(100*time.Millisecond))
	})
}

// eventuallyLoad retries load until every request succeeds (rules for a
// just-created Service may still be on their way), up to 20 s.
func eventuallyLoad(ctx context.Context, pod corev1.Pod, n int, url string) (summary, error) {
	var s summary
	_, err := eventually(20*time.Second, func() error {
		var err error
		if s, err = load(ctx, pod, "curl", n, url); err != nil {
			return err
		}
		if s.Codes["200"] != n {
			return fmt.Errorf("codes %v errors %v", s.Codes, s.Errors)
		}
		return nil
	})
	return s, err
}

func scale(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	ctx := context.Background()
	s, err := clients(t).AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	s.Spec.Replicas = replicas
	_, err = clients(t).AppsV1().Deployments(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// otherNode picks a pod that is not on node.
func otherNode(pods []corev1.Pod, node string) corev1.Pod {
	for _, p := range pods {
		if p.Spec.NodeName != node {
			return p
		}
	}
	return pods[0]
}

// udpFrom sends a datagram from a fixed source port and returns the pod that answered.
func udpFrom(ctx context.Context, pod corev1.Pod, target string) (string, error) {
	out, _, err := cluster.Exec(ctx, pod.Namespace, pod.Name, "curl", "curl", "-udp", "-local-port", "40123", "-timeout", "2s", target)
	if err != nil {
		return "", err
	}
	var r struct{ Hostname string }
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return "", fmt.Errorf("decode %q: %w", out, err)
	}
	return r.Hostname, nil
}
