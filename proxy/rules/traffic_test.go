package rules_test

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftmesh/weft/proxy/internal/netns"
)

// TestRealTraffic sends real TCP connections through the representative
// rules inside a throw-away namespace: the endpoints are addresses on a veth
// there, the Service range is routed to it, and a listener on :8080
// reports which endpoint each connection was DNATed to. Nothing leaves the
// namespace.
func TestRealTraffic(t *testing.T) {
	ctx := context.Background()
	k := kernelIn(t)
	ns := k.Wrapper[len(k.Wrapper)-1]
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	// A veth pair with both ends in the namespace stands in for a dummy
	// device (the dummy module may be missing).
	ip("link", "add", "weft-a", "type", "veth", "peer", "name", "weft-b")
	ip("link", "set", "weft-a", "up")
	ip("link", "set", "weft-b", "up")
	for _, a := range []string{"10.244.0.5", "10.244.1.2", "10.244.2.3", "10.244.3.4", "10.244.2.10", "10.244.3.11", "10.244.2.5", "10.244.3.6"} {
		ip("addr", "add", a+"/32", "dev", "weft-a")
	}
	ip("route", "add", "10.96.0.0/16", "dev", "weft-a", "src", "10.244.0.5")

	pl := newPlanner().Plan(input(representative().Tracker().Take(), true, nil))
	mustNoErr(t, k.Restore(ctx, pl.Data))

	var ln net.Listener
	mustNoErr(t, netns.Do(ns, func() (err error) { ln, err = net.Listen("tcp", ":8080"); return err }))
	defer closeOrFail(t, ln)
	hits := make(chan string, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			hits <- strings.Split(c.LocalAddr().String(), ":")[0]
			closeOrFail(t, c)
		}
	}()
	dial := func(addr string) error {
		return netns.Do(ns, func() error {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				return err
			}
			return c.Close()
		})
	}
	seen := func(addr string, n int) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range n {
			mustNoErr(t, dial(addr))
			select {
			case h := <-hits:
				got[h]++
			case <-time.After(2 * time.Second):
				t.Fatalf("connection to %s accepted by nobody", addr)
			}
		}
		return got
	}

	web := seen("10.96.0.10:80", 40)
	for _, ep := range []string{"10.244.1.2", "10.244.2.3", "10.244.3.4"} {
		if web[ep] == 0 {
			t.Errorf("demo/web: endpoint %s never chosen in 40 connections: %v", ep, web)
		}
	}
	if sticky := seen("10.96.0.14:8080", 10); len(sticky) != 1 {
		t.Errorf("demo/sticky with ClientIP affinity spread one client over %v", sticky)
	}
	if np := seen("10.244.0.5:30080", 20); np["10.244.2.5"]+np["10.244.3.6"] != 20 {
		t.Errorf("demo/nodeport on a local address reached %v, want only its endpoints", np)
	}
	if err := dial("10.96.0.16:80"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("demo/empty (no endpoints): dial error %v, want connection refused (REJECT)", err)
	}
}

func closeOrFail(t *testing.T, c interface{ Close() error }) {
	if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Error(err)
	}
}
