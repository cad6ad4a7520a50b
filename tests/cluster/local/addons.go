package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/weftmesh/weft/install"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// RESTConfig is the admin's client configuration for the local cluster.
func (c Config) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.KubeconfigPath())
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", c.KubeconfigPath(), err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}

// Clientset is a typed client for the local cluster.
func (c Config) Clientset() (*kubernetes.Clientset, error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// Values are the install values for the local cluster: per-node CNI
// directories (the nodes share one filesystem), node agents that talk to
// the API server directly, and the telemetry collector.
func (c Config) Values() install.Values {
	v := install.Defaults()
	v.PullPolicy = "Never"
	v.APIServerHost, v.APIServerPort = HostIP, strconv.Itoa(APIServerPort)
	v.ClusterCIDR, v.ServiceCIDR, v.DNSServiceIP = ClusterCIDR, ServiceCIDR, DNSServiceIP
	// `up` installs the cluster's own network (pod network, Service proxy,
	// DNS), like kind installs kindnet; the mesh is installed on top of it.
	v.Components.DNS, v.Components.Mesh = true, false
	// The demo and the e2e suite read traces: the chart's OpenTelemetry
	// Collector and trace store, which components and sidecars report to.
	v.Telemetry.Collector.Enabled = true
	nodes := filepath.Join(c.StateDir, "nodes")
	v.CNI = install.CNIValues{
		BinDir: c.cniBinDir(), ConfDir: nodes, PerNodeDirs: true,
		IPAMDir: filepath.Join(nodes, "$(NODE_NAME)", "cni", "ipam"), IPAMMount: nodes,
	}
	return v
}

// ValuesPath is where `up` writes the cluster's install values, the file
// to give `meshctl install -f`.
func (c Config) ValuesPath() string { return filepath.Join(c.clusterDir(), "values.yaml") }

// writeValues records the local cluster's install values (all components,
// mesh included) so installers outside this package use the same ones.
func writeValues(c Config) error {
	v := c.Values()
	v.Components.Mesh = true
	data, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode values: %w", err)
	}
	header := "# Install values of the local cluster, written by `tests/cluster up`.\n"
	return os.WriteFile(c.ValuesPath(), append([]byte(header), data...), 0o644)
}

func waitNodeRegistered(ctx context.Context, cs kubernetes.Interface, name string) error {
	return wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
}

// installAddons installs the cluster's own network (weft-cni-node, and
// weft-proxy and DNS as they exist), routes the host to every pod CIDR, and
// waits until every node is Ready.
func installAddons(ctx context.Context, c Config, p *progress) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	cfg, err := c.RESTConfig()
	if err != nil {
		return err
	}
	steps := []struct {
		what string
		fn   func() error
	}{
		{"install values written to " + c.ValuesPath(), func() error { return writeValues(c) }},
		{"pod network manifests applied", func() error {
			stream, err := install.Render(c.Values())
			if err != nil {
				return err
			}
			objs, err := install.Decode(stream)
			if err != nil {
				return err
			}
			applier, err := install.NewApplier(cfg, install.FieldManager)
			if err != nil {
				return err
			}
			return applier.Apply(ctx, objs)
		}},
		{"host routes to every node's pod CIDR", func() error { return routeHostToPods(ctx, c, cs) }},
		{"all nodes Ready", func() error { return waitNodesReady(ctx, cs, c.Nodes) }},
		{"weft-system DaemonSets ready", func() error { return waitDaemonSets(ctx, cs, "weft-system") }},
		{"cluster DNS (CoreDNS) available", func() error { return waitDeployments(ctx, cs, "kube-system", "coredns") }},
	}
	for _, st := range steps {
		if err := p.step(st.what, st.fn, nil); err != nil {
			return fmt.Errorf("%s: %w (logs in %s)", st.what, err, c.logDir())
		}
	}
	return nil
}

// routeHostToPods waits for the controller manager to give each node a pod
// CIDR and routes it via the node's IP.
func routeHostToPods(ctx context.Context, c Config, cs kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, n := range c.NodeList() {
		var cidr string
		err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			node, err := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			cidr = node.Spec.PodCIDR
			return cidr != "", nil
		})
		if err != nil {
			return fmt.Errorf("pod CIDR of %s: %w", n.Name, err)
		}
		if err := routePodCIDR(ctx, cidr, n.IP); err != nil {
			return err
		}
	}
	return nil
}

func waitNodesReady(ctx context.Context, cs kubernetes.Interface, want int) error {
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	var notReady []string
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		notReady = nil
		for _, n := range nodes.Items {
			if !nodeReady(n) {
				notReady = append(notReady, n.Name)
			}
		}
		return len(nodes.Items) == want && len(notReady) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("nodes not ready %v: %w", notReady, err)
	}
	return nil
}

func nodeReady(n corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func waitDaemonSets(ctx context.Context, cs kubernetes.Interface, ns string) error {
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	var pending []string
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list, err := cs.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		pending = nil
		for _, ds := range list.Items {
			if !daemonSetReady(ds) {
				pending = append(pending, ds.Name)
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("daemonsets not ready %v: %w", pending, err)
	}
	return nil
}

func daemonSetReady(ds appsv1.DaemonSet) bool {
	st := ds.Status
	return st.ObservedGeneration >= ds.Generation && st.DesiredNumberScheduled > 0 &&
		st.NumberReady == st.DesiredNumberScheduled && st.UpdatedNumberScheduled == st.DesiredNumberScheduled
}
