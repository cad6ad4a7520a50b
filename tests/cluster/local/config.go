// Package local runs a real multi-node Kubernetes cluster on one Linux machine
// without Docker: etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler in the host network namespace, and each node a network
// namespace with its own containerd and kubelet, joined by a host bridge.
// See shared/notes/local-cluster.md for the facts this rests on.
package local

import (
	"fmt"
	"net/netip"
	"path/filepath"
)

// Fixed addresses and names. The state directory is fixed (not under the
// repository) so that a later run from any clone finds and removes the
// leftovers of an earlier, killed run.
const (
	DefaultStateDir = "/var/lib/weft-cluster"
	ClusterCIDR     = "10.244.0.0/16"
	ServiceCIDR     = "10.96.0.0/16"
	NodeCIDR        = "172.20.0.0/24"
	HostIP          = "172.20.0.1" // the host's address on the node bridge; kube-apiserver listens here
	APIServerPort   = 6443
	KubernetesSvcIP = "10.96.0.1"
	DNSServiceIP    = "10.96.0.10"
	ClusterDomain   = "cluster.local"
	HostBridge      = "weft-nodes"
	HostDummy       = "weft-dummy"
	GuardChain      = "WEFT-GUARD"
	K8sVersion      = "v1.37.1"
	ImageRegistry   = "weft.local"
	ImageTag        = "dev"
	nodeNamePrefix  = "weft-node-"
	maxNodes        = 20
)

// Config says how big the cluster is and where things live.
type Config struct {
	Nodes    int
	StateDir string // runtime state: PKI, etcd, node dirs (fixed path)
	CacheDir string // the repository's .cache: bin/, images/, cluster/
}

// Node is one node's derived names and addresses.
type Node struct {
	Index    int
	Name     string // also the network namespace's name
	IP       string
	HostVeth string
	Dir      string
}

// Validate reports a Config the cluster cannot be built from.
func (c Config) Validate() error {
	if c.Nodes < 1 || c.Nodes > maxNodes {
		return fmt.Errorf("nodes must be between 1 and %d, got %d", maxNodes, c.Nodes)
	}
	if !filepath.IsAbs(c.StateDir) || !filepath.IsAbs(c.CacheDir) {
		return fmt.Errorf("state dir %q and cache dir %q must be absolute", c.StateDir, c.CacheDir)
	}
	return nil
}

// NodeList returns every node of the cluster: weft-node-1 at 172.20.0.11, ….
func (c Config) NodeList() []Node {
	nodes := make([]Node, c.Nodes)
	base := netip.MustParseAddr(HostIP).As4()
	for i := range nodes {
		ip := base
		ip[3] = byte(11 + i)
		name := fmt.Sprintf("%s%d", nodeNamePrefix, i+1)
		nodes[i] = Node{
			Index:    i + 1,
			Name:     name,
			IP:       netip.AddrFrom4(ip).String(),
			HostVeth: fmt.Sprintf("weft-h%d", i+1),
			Dir:      filepath.Join(c.StateDir, "nodes", name),
		}
	}
	return nodes
}

// Paths of shared files.
func (c Config) pki() string                { return filepath.Join(c.StateDir, "pki") }
func (c Config) etcdDir() string            { return filepath.Join(c.StateDir, "etcd") }
func (c Config) cniBinDir() string          { return filepath.Join(c.StateDir, "cni", "bin") }
func (c Config) statePath() string          { return filepath.Join(c.StateDir, "state.json") }
func (c Config) resolvConf() string         { return filepath.Join(c.StateDir, "resolv.conf") }
func (c Config) binDir() string             { return filepath.Join(c.CacheDir, "bin") }
func (c Config) imagesDir() string          { return filepath.Join(c.CacheDir, "images") }
func (c Config) clusterDir() string         { return filepath.Join(c.CacheDir, "cluster") }
func (c Config) logDir() string             { return filepath.Join(c.clusterDir(), "logs") }
func (c Config) bin(name string) string     { return filepath.Join(c.binDir(), name) }
func (c Config) kubeconfig(n string) string { return filepath.Join(c.StateDir, "kubeconfig", n) }

// KubeconfigPath is the admin kubeconfig users and tests point at.
func (c Config) KubeconfigPath() string { return filepath.Join(c.clusterDir(), "kubeconfig") }

// APIServerURL is where kube-apiserver listens (the host's bridge address).
func APIServerURL() string { return fmt.Sprintf("https://%s:%d", HostIP, APIServerPort) }

// Node paths.
func (n Node) netnsPath() string      { return filepath.Join("/var/run/netns", n.Name) }
func (n Node) containerdDir() string  { return filepath.Join(n.Dir, "containerd") }
func (n Node) containerdSock() string { return filepath.Join(n.containerdDir(), "containerd.sock") }
func (n Node) kubeletDir() string     { return filepath.Join(n.Dir, "kubelet") }
func (n Node) cniConfDir() string     { return filepath.Join(n.Dir, "cni", "net.d") }
func (n Node) ipamDir() string        { return filepath.Join(n.Dir, "cni", "ipam") }
func (n Node) podLogsDir() string     { return filepath.Join(n.Dir, "pod-logs") }
func (n Node) cgroupRoot() string     { return "/" + n.Name }
