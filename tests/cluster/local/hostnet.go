package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// run executes a command and returns its combined output, wrapping failures
// with the command line and what it printed.
func run(ctx context.Context, name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// guardRules keep every packet of the cluster's networks on this machine:
// traffic to or from the pod, Service and node networks may only use the node
// bridge, the dummy device or loopback; anything else is dropped. They sit in
// OUTPUT and FORWARD of the host's filter table (notes: Safety).
func guardRules() [][]string {
	comment := func(why string) []string { return []string{"-m", "comment", "--comment", "weft local cluster: " + why} }
	var rules [][]string
	for _, dev := range []string{"lo", HostBridge, HostDummy} {
		rules = append(rules, append([]string{"-o", dev}, append(comment("local interface"), "-j", "RETURN")...))
	}
	for _, cidr := range []string{ClusterCIDR, ServiceCIDR, NodeCIDR} {
		rules = append(rules,
			append([]string{"-d", cidr}, append(comment("never send cluster traffic off the machine"), "-j", "DROP")...),
			append([]string{"-s", cidr}, append(comment("never send cluster traffic off the machine"), "-j", "DROP")...))
	}
	return rules
}

var guardHooks = []string{"OUTPUT", "FORWARD"}

func guardJump() []string {
	return []string{"-m", "comment", "--comment", "weft local cluster: leak guard", "-j", GuardChain}
}

// installGuards creates the guard chain and hooks it first in OUTPUT and FORWARD.
func installGuards(ctx context.Context) error {
	if _, err := run(ctx, "iptables", "-w", "-N", GuardChain); err != nil {
		return err
	}
	for _, r := range guardRules() {
		if _, err := run(ctx, "iptables", append([]string{"-w", "-A", GuardChain}, r...)...); err != nil {
			return err
		}
	}
	for _, hook := range guardHooks {
		if _, err := run(ctx, "iptables", append([]string{"-w", "-I", hook, "1"}, guardJump()...)...); err != nil {
			return err
		}
	}
	return nil
}

// removeGuards undoes installGuards; it is a no-op when they are absent.
func removeGuards(ctx context.Context) error {
	for _, hook := range guardHooks {
		for {
			if _, err := run(ctx, "iptables", append([]string{"-w", "-D", hook}, guardJump()...)...); err != nil {
				break
			}
		}
	}
	if _, err := run(ctx, "iptables", "-w", "-n", "-L", GuardChain); err != nil {
		return nil
	}
	if _, err := run(ctx, "iptables", "-w", "-F", GuardChain); err != nil {
		return err
	}
	_, err := run(ctx, "iptables", "-w", "-X", GuardChain)
	return err
}

// setupHostNetwork creates the node bridge (with the host's address, where
// kube-apiserver listens) and a dummy device that swallows packets to the
// Service and pod networks which no rule rewrote.
func setupHostNetwork(ctx context.Context) error {
	if err := addDiscardDevice(ctx, nil); err != nil {
		return err
	}
	steps := [][]string{
		{"link", "add", HostBridge, "type", "bridge"},
		{"addr", "add", HostIP + "/24", "dev", HostBridge},
		{"link", "set", HostBridge, "up"},
		{"route", "add", ServiceCIDR, "dev", HostDummy},
		{"route", "add", ClusterCIDR, "dev", HostDummy},
	}
	for _, s := range steps {
		if _, err := run(ctx, "ip", s...); err != nil {
			return err
		}
	}
	return nil
}

// setupNodeNetwork creates the node's network namespace, wires it to the
// bridge with a veth (eth0 inside), and routes the Service network to a dummy
// device inside so an un-NATed ClusterIP packet dies in the node.
func setupNodeNetwork(ctx context.Context, n Node) error {
	ns := []string{"-n", n.Name}
	steps := [][]string{
		{"netns", "add", n.Name},
		{"link", "add", n.HostVeth, "type", "veth", "peer", "name", "eth0", "netns", n.Name},
		{"link", "set", n.HostVeth, "master", HostBridge, "up"},
		append(ns, "link", "set", "lo", "up"),
		append(ns, "addr", "add", n.IP+"/24", "dev", "eth0"),
		append(ns, "link", "set", "eth0", "up"),
		append(ns, "route", "add", "default", "via", HostIP),
	}
	for _, s := range steps {
		if _, err := run(ctx, "ip", s...); err != nil {
			return err
		}
	}
	if err := addDiscardDevice(ctx, ns); err != nil {
		return err
	}
	if _, err := run(ctx, "ip", append(ns, "route", "add", ServiceCIDR, "dev", HostDummy)...); err != nil {
		return err
	}
	for key, value := range map[string]string{"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"} {
		if _, err := run(ctx, "ip", "netns", "exec", n.Name, "sh", "-c", fmt.Sprintf("echo %s > /proc/sys/%s", value, key)); err != nil {
			return err
		}
	}
	return nil
}

// addDiscardDevice creates HostDummy, a device that silently drops what is
// routed to it: a dummy device where the kernel has one, else an IFB device
// (which drops every packet not redirected to it by tc, and needs no ARP).
// nsArgs selects a network namespace ("-n <name>") or the host (nil).
func addDiscardDevice(ctx context.Context, nsArgs []string) error {
	ip := func(args ...string) error {
		_, err := run(ctx, "ip", append(append([]string(nil), nsArgs...), args...)...)
		return err
	}
	if err := ip("link", "add", HostDummy, "type", "dummy"); err != nil {
		if errIFB := ip("link", "add", HostDummy, "type", "ifb"); errIFB != nil {
			return fmt.Errorf("no dummy or ifb device support: %w; %w", err, errIFB)
		}
	}
	return ip("link", "set", HostDummy, "up")
}

// routePodCIDR sends the host's traffic for a node's pod CIDR to that node
// (the API server calls webhooks and kubelets reach pods this way).
func routePodCIDR(ctx context.Context, podCIDR, nodeIP string) error {
	_, err := run(ctx, "ip", "route", "replace", podCIDR, "via", nodeIP, "dev", HostBridge)
	return err
}

// linkExists reports whether a network interface of that name exists in the host namespace.
func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}
