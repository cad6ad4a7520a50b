// Package kind holds the kind route for Weft's e2e suite: the cluster config
// (tests/e2e/kind/kind-config.yaml) and its validation against kind's own
// config types, and the run itself (cmd/kind-e2e, `make e2e-kind`): a Plan
// of steps as data (create the cluster, `kind load image-archive` every
// tarball the local cluster also loads, install Weft with the chart, run
// the suite, delete the cluster) and a Runner that executes it. kind needs
// a Docker engine, which this project's machines do not have, so the config
// and the plan are checked here (the plan against a fake kind) and the
// route is documented in README.md.
package kind

import (
	_ "embed"
	"errors"
	"fmt"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

// Config is the kind cluster config file's content.
//
//go:embed kind-config.yaml
var Config []byte

// noKubeProxy is kind's "none" proxy mode (kind accepts it; its API has no
// constant for it): kubeadm skips kube-proxy entirely.
const noKubeProxy v1alpha4.ProxyMode = "none"

// Load decodes a kind config strictly (unknown fields are errors, as kind
// itself rejects them) and checks what Weft needs of the cluster.
func Load(data []byte) (*v1alpha4.Cluster, error) {
	var c v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("decode kind config: %w", err)
	}
	v1alpha4.SetDefaultsCluster(&c)
	return &c, Check(&c)
}

// Check reports every way the cluster config differs from what Weft's e2e
// suite expects: kind's API version, no default CNI, no kube-proxy, the
// local cluster's CIDRs and three nodes.
func Check(c *v1alpha4.Cluster) error {
	var errs []error
	if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
		errs = append(errs, fmt.Errorf("want kind.x-k8s.io/v1alpha4 Cluster, got %s %s", c.APIVersion, c.Kind))
	}
	if !c.Networking.DisableDefaultCNI {
		errs = append(errs, errors.New("networking.disableDefaultCNI must be true: weft-cni-node is the CNI"))
	}
	if c.Networking.KubeProxyMode != noKubeProxy {
		errs = append(errs, fmt.Errorf("networking.kubeProxyMode must be none (weft-proxy replaces it), got %q", c.Networking.KubeProxyMode))
	}
	if c.Networking.PodSubnet != "10.244.0.0/16" || c.Networking.ServiceSubnet != "10.96.0.0/16" {
		errs = append(errs, fmt.Errorf("pod/service subnets must be 10.244.0.0/16 and 10.96.0.0/16, got %s and %s", c.Networking.PodSubnet, c.Networking.ServiceSubnet))
	}
	if len(c.Nodes) != 3 {
		errs = append(errs, fmt.Errorf("want 3 nodes, got %d", len(c.Nodes)))
	}
	return errors.Join(errs...)
}
