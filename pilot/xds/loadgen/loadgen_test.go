package main

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary double as the client process, since run
// re-executes os.Executable with -clients.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "-clients" {
		if err := runClients(context.Background(), os.Args[2]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs a tiny load test end to end (both xDS variants) so the
// load generator keeps working; the real table is run by hand.
func TestSmoke(t *testing.T) {
	for _, delta := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		o := options{proxies: 6, services: 4, namespaces: 2, changes: 2, delta: delta, debounce: 10 * time.Millisecond, json: true}
		if err := run(ctx, o); err != nil {
			t.Fatalf("delta=%v: %v", delta, err)
		}
		cancel()
	}
}
