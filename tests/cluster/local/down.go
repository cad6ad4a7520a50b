package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// kubeletSysctls are the host-wide sysctls the kubelet changes; their
// original values are recorded before the first kubelet starts and restored
// on teardown.
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// recordSysctls saves the current values unless a (stale) record exists,
// which then still holds the true originals.
func recordSysctls(s *State) error {
	if len(s.Sysctls) > 0 {
		return nil
	}
	for _, key := range kubeletSysctls {
		v, err := os.ReadFile(filepath.Join("/proc/sys", key))
		if err != nil {
			continue
		}
		s.Sysctls[key] = strings.TrimSpace(string(v))
	}
	return s.save()
}

func restoreSysctls(s *State) error {
	var errs []error
	for key, v := range s.Sysctls {
		if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", key, err))
		}
	}
	return errors.Join(errs...)
}

// runtimePaths are host paths the kubelet and containerd write to whatever
// their configured directories: the device-plugin socket dir, container log
// symlinks, libcni's result cache, and containerd's shim socket dir.
var runtimePaths = []string{"/var/lib/kubelet", "/var/log/containers", "/var/lib/cni", "/run/containerd"}

// recordRuntimePaths notes which runtime paths do not exist yet, so teardown
// removes exactly those and leaves pre-existing ones (and their other
// contents) alone.
func recordRuntimePaths(s *State) error {
	for _, p := range runtimePaths {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			s.CreatedPaths = append(s.CreatedPaths, p)
		}
	}
	return s.save()
}

// removeRuntimeFiles deletes the runtime paths this run created and, in
// pre-existing ones, only entries that belong to this cluster.
func removeRuntimeFiles(c Config, s *State) error {
	var errs []error
	for _, p := range s.CreatedPaths {
		errs = append(errs, os.RemoveAll(p))
	}
	links, _ := filepath.Glob("/var/log/containers/*.log")
	for _, l := range links {
		if target, err := os.Readlink(l); err == nil && strings.HasPrefix(target, c.StateDir+"/") {
			errs = append(errs, os.Remove(l))
		}
	}
	cached, _ := filepath.Glob("/var/lib/cni/results/weft-*")
	for _, f := range cached {
		errs = append(errs, os.Remove(f))
	}
	return errors.Join(errs...)
}

// leftovers reports whether anything of a cluster exists on this machine.
func leftovers(c Config) bool {
	if _, err := os.Stat(c.StateDir); err == nil {
		return true
	}
	if linkExists(HostBridge) || linkExists(HostDummy) {
		return true
	}
	nodes, _ := filepath.Glob("/var/run/netns/" + nodeNamePrefix + "*")
	return len(nodes) > 0
}

// knownNodes is every node a run may have created: from the saved state,
// the node directories and the network namespaces named like ours.
func knownNodes(c Config, s *State) []Node {
	names := map[string]bool{}
	for _, n := range s.Nodes {
		names[n] = true
	}
	for _, pattern := range []string{filepath.Join(c.StateDir, "nodes", nodeNamePrefix+"*"), "/var/run/netns/" + nodeNamePrefix + "*"} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			names[filepath.Base(m)] = true
		}
	}
	var nodes []Node
	for _, n := range (Config{Nodes: maxNodes, StateDir: c.StateDir}).NodeList() {
		if names[n.Name] {
			nodes = append(nodes, n)
		}
	}
	return nodes
}

// Down stops everything a run started and removes everything it created,
// leaving the machine as it was. It works from a complete run, a half-built
// one, or the leftovers of a killed one, and is a no-op on a clean machine.
func Down(ctx context.Context, c Config, out io.Writer) error {
	p := newProgress(out)
	s, err := loadState(c.statePath())
	if err != nil {
		return err
	}
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	nodes := knownNodes(c, s)
	for _, n := range nodes {
		p.step("stop node "+n.Name, func() error {
			var nodeErrs []error
			if k, ok := s.process("kubelet/" + n.Name); ok {
				nodeErrs = append(nodeErrs, k.Stop(20*time.Second))
			}
			if cd, ok := s.process("containerd/" + n.Name); ok && cd.Alive() {
				nodeErrs = append(nodeErrs, removeSandboxes(ctx, n))
			}
			if _, err := killCgroupTasks(n.Name); err != nil {
				nodeErrs = append(nodeErrs, err)
			}
			if cd, ok := s.process("containerd/" + n.Name); ok {
				nodeErrs = append(nodeErrs, cd.Stop(10*time.Second))
			}
			for _, pid := range shimsOf(n) {
				nodeErrs = append(nodeErrs, syscall.Kill(pid, syscall.SIGKILL))
			}
			return errors.Join(nodeErrs...)
		}, note)
	}
	p.step("stop control plane", func() error {
		var cpErrs []error
		for _, name := range []string{"kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"} {
			if proc, ok := s.process(name); ok {
				cpErrs = append(cpErrs, proc.Stop(20*time.Second))
			}
		}
		return errors.Join(cpErrs...)
	}, note)
	p.step("unmount and remove network namespaces", func() error {
		var netErrs []error
		netErrs = append(netErrs, unmountAll(c.StateDir))
		orphans, err := orphanPodNetns()
		netErrs = append(netErrs, err)
		for _, ns := range orphans {
			netErrs = append(netErrs, removeNetns(ns))
		}
		for _, n := range nodes {
			if _, err := os.Stat(n.netnsPath()); err == nil {
				_, err := run(ctx, "ip", "netns", "del", n.Name)
				netErrs = append(netErrs, err)
			}
		}
		for _, link := range []string{HostBridge, HostDummy} {
			if linkExists(link) {
				_, err := run(ctx, "ip", "link", "del", link)
				netErrs = append(netErrs, err)
			}
		}
		netErrs = append(netErrs, removeGuards(ctx))
		return errors.Join(netErrs...)
	}, note)
	p.step("remove cgroups, restore sysctls, delete state", func() error {
		var fsErrs []error
		for _, n := range nodes {
			fsErrs = append(fsErrs, removeCgroupRoot(n.Name))
		}
		fsErrs = append(fsErrs, restoreSysctls(s), removeRuntimeFiles(c, s))
		if err := errors.Join(fsErrs...); err != nil {
			return err // keep the state so a second `down` can finish the job
		}
		return os.RemoveAll(c.StateDir)
	}, note)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("teardown incomplete (run `down` again; logs in %s): %w", c.logDir(), err)
	}
	p.step("nothing left: processes, netns, links, rules, mounts, cgroups, state", func() error {
		if left := remains(ctx, c, s, nodes); len(left) > 0 {
			return fmt.Errorf("still on this machine: %s", strings.Join(left, ", "))
		}
		return nil
	}, note)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("teardown incomplete (run `down` again): %w", err)
	}
	p.done("cluster removed")
	return nil
}

// removeNetns unmounts and deletes a named network namespace file.
func removeNetns(path string) error {
	if err := syscall.Unmount(path, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
