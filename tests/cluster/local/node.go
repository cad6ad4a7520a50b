package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
	"time"
)

// containerdConfig is a node's containerd: its own root, state, socket and runc
// root; our pause image; CNI from the shared bin dir and the node's conf dir.
// restrict_oom_score_adj is required here: the VM lacks CAP_SYS_RESOURCE.
var containerdConfig = template.Must(template.New("containerd").Parse(`version = 2
root = "{{.Dir}}/containerd/root"
state = "{{.Dir}}/containerd/state"
plugin_dir = ""
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{{.Dir}}/containerd/containerd.sock"

[ttrpc]
  address = "{{.Dir}}/containerd/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{{.Dir}}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{.Pause}}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{{.Dir}}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{{.CNIBin}}"
    conf_dir = "{{.Dir}}/cni/net.d"
    max_conf_num = 1
`))

// kubeletConfig is a node's KubeletConfiguration (notes: Nodes).
var kubeletConfig = template.Must(template.New("kubelet").Parse(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {{.IP}}
cgroupDriver: cgroupfs
cgroupRoot: {{.CgroupRoot}}
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://{{.Dir}}/containerd/containerd.sock
podLogsDir: {{.Dir}}/pod-logs
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: {{.CA}}}
authorization: {mode: Webhook}
tlsCertFile: {{.Dir}}/kubelet/pki/kubelet.crt
tlsPrivateKeyFile: {{.Dir}}/kubelet/pki/kubelet.key
clusterDomain: {{.Domain}}
clusterDNS: [{{.DNS}}]
resolvConf: {{.ResolvConf}}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
serializeImagePulls: false
maxPods: 110
`))

type nodeTemplateData struct {
	Node
	CgroupRoot, Pause, CNIBin, CA, Domain, DNS, ResolvConf string
}

// writeNodeConfig writes containerd's and the kubelet's config for n.
func writeNodeConfig(c Config, n Node) error {
	data := nodeTemplateData{
		Node: n, CgroupRoot: n.cgroupRoot(), Pause: ImageRegistry + "/pause:" + ImageTag,
		CNIBin: c.cniBinDir(), CA: filepath.Join(c.pki(), "ca.crt"), Domain: ClusterDomain,
		DNS: DNSServiceIP, ResolvConf: c.resolvConf(),
	}
	for _, dir := range []string{n.containerdDir(), n.kubeletDir(), n.cniConfDir(), n.ipamDir(), n.podLogsDir(), c.cniBinDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	files := map[string]*template.Template{
		filepath.Join(n.containerdDir(), "config.toml"): containerdConfig,
		filepath.Join(n.kubeletDir(), "config.yaml"):    kubeletConfig,
	}
	for path, tmpl := range files {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, data); err != nil {
			return fmt.Errorf("render %s: %w", path, err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

// installLoopback puts the reference loopback plugin (Debian's
// containernetworking-plugins, installed by make deps) into the shared CNI
// bin dir: containerd's CRI brings up every pod's lo with it, as on any node.
func installLoopback(c Config) error {
	data, err := os.ReadFile(referenceLoopback)
	if err != nil {
		return fmt.Errorf("read %s (make deps installs it): %w", referenceLoopback, err)
	}
	if err := os.WriteFile(filepath.Join(c.cniBinDir(), "loopback"), data, 0o755); err != nil {
		return fmt.Errorf("install loopback plugin: %w", err)
	}
	return nil
}

const referenceLoopback = "/usr/lib/cni/loopback"

// kubeletArgs are the flags that are not in the config file.
func kubeletArgs(n Node) []string {
	return []string{
		"--config=" + filepath.Join(n.kubeletDir(), "config.yaml"),
		"--kubeconfig=" + filepath.Join(n.kubeletDir(), "kubeconfig"),
		"--root-dir=" + filepath.Join(n.kubeletDir(), "root"),
		"--cert-dir=" + filepath.Join(n.kubeletDir(), "pki"),
		"--hostname-override=" + n.Name,
		"--node-ip=" + n.IP,
		"--v=1",
	}
}

// cgroupHierarchies lists the mounted cgroup v1 hierarchies (cpu, memory, …),
// or the unified v2 root alone.
func cgroupHierarchies() ([]string, error) {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{"/sys/fs/cgroup"}, nil
	}
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil, fmt.Errorf("list cgroup hierarchies: %w", err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	return dirs, nil
}

// createCgroupRoot makes /<node> in every hierarchy; cpuset needs its cpus and
// mems copied from the root before tasks can join.
func createCgroupRoot(n Node) error {
	roots, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	for _, root := range roots {
		dir := filepath.Join(root, n.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		if filepath.Base(root) != "cpuset" {
			continue
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := os.ReadFile(filepath.Join(root, f))
			if err != nil {
				return fmt.Errorf("read %s: %w", f, err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", filepath.Join(dir, f), err)
			}
		}
	}
	return nil
}

// removeCgroupRoot removes /<node> and everything below it, deepest first,
// retrying briefly while the last tasks exit.
func removeCgroupRoot(name string) error {
	roots, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	var errs []error
	for _, root := range roots {
		top := filepath.Join(root, name)
		if _, err := os.Stat(top); err != nil {
			continue
		}
		var dirs []string
		if err := filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("walk %s: %w", top, err)
		}
		for i := len(dirs) - 1; i >= 0; i-- {
			errs = append(errs, rmdirRetry(dirs[i]))
		}
	}
	return errors.Join(errs...)
}

func rmdirRetry(dir string) error {
	var err error
	for range 50 {
		if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// ImageArchives lists the image tarballs `make images` wrote to dir
// (every *.tar: each image's dev tag and the other tags of the upgrade
// test), sorted. The local cluster and the kind route (tests/e2e/kind)
// both load exactly this list; an empty dir is an error.
func ImageArchives(dir string) ([]string, error) {
	tars, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	if len(tars) == 0 {
		return nil, fmt.Errorf("no image tarballs in %s: run `make images`", dir)
	}
	sort.Strings(tars)
	return tars, nil
}

// importImages loads every image tarball into the node's containerd (the
// k8s.io namespace, where the CRI looks).
func importImages(ctx context.Context, c Config, n Node) error {
	tars, err := ImageArchives(c.imagesDir())
	if err != nil {
		return err
	}
	for _, tar := range tars {
		out, err := run(ctx, "ctr", "--address", n.containerdSock(), "-n", "k8s.io", "images", "import", "--no-unpack=false", tar)
		if err != nil {
			return fmt.Errorf("import %s into %s: %w", filepath.Base(tar), n.Name, err)
		}
		if !strings.Contains(out, "done") && !strings.Contains(out, "unpacking") {
			return fmt.Errorf("import %s into %s: unexpected output %q", filepath.Base(tar), n.Name, out)
		}
	}
	return nil
}
