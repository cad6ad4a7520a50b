package local

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
)

// requiredBinaries must exist in .cache/bin before `up` (built by `make deps`).
var requiredBinaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"}

// Up builds the cluster from nothing, first removing what an earlier run
// left behind. It prints each step with its duration.
func Up(ctx context.Context, c Config, out io.Writer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	for _, b := range requiredBinaries {
		if _, err := os.Stat(c.bin(b)); err != nil {
			return fmt.Errorf("missing %s: run `make deps` first", c.bin(b))
		}
	}
	if leftovers(c) {
		fmt.Fprintln(out, "removing leftovers of an earlier run")
		if err := Down(ctx, c, out); err != nil {
			return fmt.Errorf("remove leftovers: %w", err)
		}
	}
	fmt.Fprintf(out, "weft local cluster: Kubernetes %s, %d nodes, state in %s\n", K8sVersion, c.Nodes, c.StateDir)
	p := newProgress(out)
	if err := os.RemoveAll(c.logDir()); err != nil {
		return fmt.Errorf("clear logs: %w", err)
	}
	s := &State{path: c.statePath(), Sysctls: map[string]string{}}
	for _, n := range c.NodeList() {
		s.Nodes = append(s.Nodes, n.Name)
	}
	if err := recordRuntimePaths(s); err != nil {
		return err
	}
	now := time.Now()
	var ca *authority
	steps := []struct {
		what string
		fn   func() error
	}{
		{"leak guards (iptables " + GuardChain + ")", func() error { return installGuards(ctx) }},
		{"host network: bridge " + HostBridge + " " + HostIP, func() error { return setupHostNetwork(ctx) }},
		{"certificates and kubeconfigs", func() error {
			var err error
			if ca, err = writePKI(c.pki(), now); err != nil {
				return err
			}
			return writeKubeconfigs(c, ca, now)
		}},
	}
	for _, comp := range controlPlane(c) {
		comp := comp
		steps = append(steps, struct {
			what string
			fn   func() error
		}{comp.name + " ready", func() error { return startComponent(ctx, c, s, comp) }})
	}
	steps = append(steps, []struct {
		what string
		fn   func() error
	}{
		{fmt.Sprintf("%d node namespaces, cgroups, configs", c.Nodes), func() error { return prepareNodes(ctx, c, ca, now) }},
		{"containerd on every node", func() error { return startContainerds(ctx, c, s) }},
		{"images imported into every node", func() error { return eachNode(c, func(n Node) error { return importImages(ctx, c, n) }) }},
		{"kubelets registered", func() error { return startKubelets(ctx, c, s) }},
	}...)
	for _, st := range steps {
		if err := p.step(st.what, st.fn, nil); err != nil {
			return fmt.Errorf("%s: %w (logs in %s; `down` cleans up)", st.what, err, c.logDir())
		}
	}
	if err := installAddons(ctx, c, p); err != nil {
		return err
	}
	p.done("cluster up")
	fmt.Fprintf(out, "kubeconfig: %s\n", c.KubeconfigPath())
	return nil
}

// startComponent starts one control-plane daemon and waits until it is ready.
func startComponent(ctx context.Context, c Config, s *State, comp component) error {
	proc, err := startProcess(comp.name, "", c.bin(comp.name), comp.args, filepath.Join(c.logDir(), comp.name+".log"))
	if err != nil {
		return err
	}
	if err := s.addProcess(proc); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	return exitOrReady(ctx, proc, comp.ready)
}

// exitOrReady waits for ready, failing fast if the process dies first.
func exitOrReady(ctx context.Context, proc Process, ready func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	died := make(chan struct{})
	go func() {
		for ctx.Err() == nil {
			if !proc.Alive() {
				close(died)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- ready(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-died:
		return fmt.Errorf("%s exited during start-up", proc.Name)
	}
}

func eachNode(c Config, fn func(Node) error) error {
	var g errgroup.Group
	for _, n := range c.NodeList() {
		g.Go(func() error { return fn(n) })
	}
	return g.Wait()
}

// prepareNodes creates each node's network namespace, cgroup root,
// credentials and configuration files.
func prepareNodes(ctx context.Context, c Config, ca *authority, now time.Time) error {
	if err := os.WriteFile(c.resolvConf(), []byte("# weft local cluster: no upstream DNS leaves this machine\nnameserver "+HostIP+"\n"), 0o644); err != nil {
		return fmt.Errorf("write resolv.conf: %w", err)
	}
	if err := os.MkdirAll(c.cniBinDir(), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", c.cniBinDir(), err)
	}
	if err := installLoopback(c); err != nil {
		return err
	}
	for _, n := range c.NodeList() {
		if err := setupNodeNetwork(ctx, n); err != nil {
			return err
		}
		if err := createCgroupRoot(n); err != nil {
			return err
		}
		if err := writeNodeCredentials(c, n, ca, now); err != nil {
			return err
		}
		if err := writeNodeConfig(c, n); err != nil {
			return err
		}
	}
	return nil
}

func startContainerds(ctx context.Context, c Config, s *State) error {
	for _, n := range c.NodeList() {
		proc, err := startProcess("containerd/"+n.Name, n.netnsPath(), "containerd",
			[]string{"--config", filepath.Join(n.containerdDir(), "config.toml")},
			filepath.Join(c.logDir(), n.Name, "containerd.log"))
		if err != nil {
			return err
		}
		if err := s.addProcess(proc); err != nil {
			return err
		}
	}
	return eachNode(c, func(n Node) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		proc, _ := s.process("containerd/" + n.Name)
		return exitOrReady(ctx, proc, func(ctx context.Context) error {
			for {
				if _, err := run(ctx, "ctr", "--address", n.containerdSock(), "version"); err == nil {
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("containerd of %s not ready: %w", n.Name, ctx.Err())
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	})
}

// startKubelets starts the kubelets one at a time, each after the previous
// one registered its Node: every kubelet binds the same hard-coded
// /var/lib/kubelet/device-plugins/kubelet.sock (it ignores --root-dir), and
// two starting at once race on it and one exits.
func startKubelets(ctx context.Context, c Config, s *State) error {
	if err := recordSysctls(s); err != nil {
		return err
	}
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	for _, n := range c.NodeList() {
		proc, err := startProcess("kubelet/"+n.Name, n.netnsPath(), c.bin("kubelet"), kubeletArgs(n),
			filepath.Join(c.logDir(), n.Name, "kubelet.log"))
		if err != nil {
			return err
		}
		if err := s.addProcess(proc); err != nil {
			return err
		}
		waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err = exitOrReady(waitCtx, proc, func(ctx context.Context) error {
			return waitNodeRegistered(ctx, cs, n.Name)
		})
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}
