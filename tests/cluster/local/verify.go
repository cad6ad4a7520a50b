package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// remains lists what of a cluster is still on this machine after a
// teardown: live recorded processes, node network namespaces, host links,
// the leak-guard chain, mounts under the state dir, node cgroups and the
// state dir itself. Down fails when it is not empty, so "the machine is as
// it was" is checked, not assumed.
func remains(ctx context.Context, c Config, s *State, nodes []Node) []string {
	var out []string
	for _, p := range s.Processes {
		if p.Alive() {
			out = append(out, fmt.Sprintf("process %s (pid %d)", p.Name, p.PID))
		}
	}
	netns, _ := filepath.Glob("/var/run/netns/" + nodeNamePrefix + "*")
	for _, ns := range netns {
		out = append(out, "network namespace "+filepath.Base(ns))
	}
	links := []string{HostBridge, HostDummy}
	for _, n := range nodes {
		links = append(links, n.HostVeth)
	}
	for _, l := range links {
		if linkExists(l) {
			out = append(out, "link "+l)
		}
	}
	if _, err := run(ctx, "iptables", "-w", "-n", "-L", GuardChain); err == nil {
		out = append(out, "iptables chain "+GuardChain)
	}
	mounts, err := mountsUnder(c.StateDir)
	if err != nil {
		out = append(out, err.Error())
	}
	for _, m := range mounts {
		out = append(out, "mount "+m)
	}
	if roots, err := cgroupHierarchies(); err == nil {
		for _, root := range roots {
			for _, n := range nodes {
				if _, err := os.Stat(filepath.Join(root, n.Name)); err == nil {
					out = append(out, "cgroup "+filepath.Join(root, n.Name))
				}
			}
		}
	}
	if _, err := os.Stat(c.StateDir); err == nil {
		out = append(out, "state dir "+c.StateDir)
	}
	return out
}
