// Package netns creates and removes the throw-away network namespaces that
// weft-proxy's kernel tests and benchmark harness run in, so that no rule is
// ever written into the host's namespace. Names are "<prefix>-<pid>-<n>";
// namespaces left by a killed process are recognised by their dead pid and
// removed on the next Create.
package netns

import (
	"errors"
	"runtime"

	"context"
	"fmt"
	vnetns "github.com/vishvananda/netns"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
)

// Prefix starts the name of every namespace this package creates.
const Prefix = "wefpt"

var seq atomic.Int64

// Create makes a new namespace with loopback up and returns its name;
// purpose is one word without dashes.
func Create(ctx context.Context, purpose string) (string, error) {
	if purpose == "" || strings.Contains(purpose, "-") {
		return "", fmt.Errorf("netns purpose %q must be one word without dashes", purpose)
	}
	if err := RemoveStale(ctx); err != nil {
		return "", err
	}
	name := fmt.Sprintf("%s-%s-%d-%d", Prefix, purpose, os.Getpid(), seq.Add(1))
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput(); err != nil {
		return "", fmt.Errorf("create netns %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.CommandContext(ctx, "ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return name, fmt.Errorf("set lo up in %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return name, nil
}

// Delete removes a namespace; its rules and conntrack entries go with it.
func Delete(ctx context.Context, name string) error {
	if !strings.HasPrefix(name, Prefix+"-") {
		return fmt.Errorf("refusing to delete netns %q: not created by weft-proxy tests", name)
	}
	if out, err := exec.CommandContext(ctx, "ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("delete netns %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Exec returns the command prefix that runs a program inside name.
func Exec(name string) []string { return []string{"ip", "netns", "exec", name} }

// RemoveStale deletes namespaces of this package whose creating process is
// gone (a test or harness killed before its cleanup ran).
func RemoveStale(ctx context.Context) error {
	entries, err := os.ReadDir("/var/run/netns")
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list netns: %w", err)
	}
	for _, e := range entries {
		parts := strings.Split(e.Name(), "-")
		if len(parts) != 4 || parts[0] != Prefix {
			continue
		}
		pid, err := strconv.Atoi(parts[2])
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := Delete(ctx, e.Name()); err != nil {
			return err
		}
	}
	return nil
}

func processAlive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// Do runs fn on an OS thread switched into the named namespace. A
// socket created there stays in that namespace, whichever thread uses it
// later. If switching back fails the thread stays locked and dies with the
// goroutine, so no other goroutine runs in the wrong namespace.
func Do(name string, fn func() error) error {
	type result struct{ err error }
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			done <- result{fmt.Errorf("current netns: %w", err)}
			return
		}
		defer func() {
			if err := orig.Close(); err != nil {
				return
			}
		}()
		target, err := vnetns.GetFromName(name)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{fmt.Errorf("open netns %s: %w", name, err)}
			return
		}
		defer func() {
			if err := target.Close(); err != nil {
				return
			}
		}()
		if err := vnetns.Set(target); err != nil {
			runtime.UnlockOSThread()
			done <- result{fmt.Errorf("enter netns %s: %w", name, err)}
			return
		}
		ferr := fn()
		if err := vnetns.Set(orig); err != nil {
			done <- result{errors.Join(ferr, fmt.Errorf("leave netns %s: %w", name, err))}
			return // thread stays locked and is discarded
		}
		runtime.UnlockOSThread()
		done <- result{ferr}
	}()
	return (<-done).err
}
