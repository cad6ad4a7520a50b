// Package nstest creates throwaway named network namespaces for Weft's CNI
// tests and benchmark, so nothing they build (bridges, veths, routes,
// iptables rules) ever touches the host's network namespace.
package nstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
)

// Dir is where iproute2 (and containerd) keep named network namespaces.
const Dir = "/var/run/netns"

var (
	counter atomic.Int64
	// ours matches the names New makes: weftt-cni<pid>x<n>-<tag>.
	ours = regexp.MustCompile(`^weftt-cni(\d+)x\d+-`)
)

// NS is a named network namespace; Path can be passed as CNI_NETNS.
type NS struct {
	ns.NetNS
	Name string
}

// Path is the bind-mounted namespace file.
func (n *NS) Path() string { return filepath.Join(Dir, n.Name) }

// New creates a namespace named weftt-cni<pid>x<n>-<tag> with loopback up.
// It first removes namespaces an earlier, killed run of this package left.
func New(tag string) (*NS, error) {
	removeLeftovers()
	name := fmt.Sprintf("weftt-cni%dx%d-%s", os.Getpid(), counter.Add(1), tag)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	handle, err := ns.GetNS(filepath.Join(Dir, name))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open netns %s: %w", name, err), deleteNamed(name))
	}
	n := &NS{NetNS: handle, Name: name}
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return nil, errors.Join(fmt.Errorf("set lo up in %s: %w: %s", name, err, out), n.Delete())
	}
	return n, nil
}

// Delete closes and removes the namespace, and with it every interface in it.
func (n *NS) Delete() error {
	return errors.Join(n.Close(), deleteNamed(n.Name))
}

// Run runs a command inside the namespace and returns its combined output.
func (n *NS) Run(name string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), n.Name, err, out)
	}
	return string(out), nil
}

// NewT is New for tests: it skips when not root and deletes the namespace
// when the test ends, pass or fail.
func NewT(t testing.TB, tag string) *NS {
	t.Helper()
	RequireRoot(t)
	n, err := New(tag)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Delete(); err != nil {
			t.Errorf("delete netns: %v", err)
		}
	})
	return n
}

// RequireRoot skips the test unless it runs as root: namespaces, bridges
// and veths need CAP_SYS_ADMIN and CAP_NET_ADMIN.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
}

func deleteNamed(name string) error {
	out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip netns delete %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeLeftovers deletes namespaces of this package whose creating process
// is gone (a test binary killed before its cleanups ran).
func removeLeftovers() {
	entries, err := os.ReadDir(Dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		m := ours.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue
		}
		if err := deleteNamed(e.Name()); err != nil {
			fmt.Fprintln(os.Stderr, "nstest: remove leftover:", err)
		}
	}
}
