// Command loadgen measures pilot's xDS control plane at scale: it runs the
// xDS server in this process on a model of M Services, starts N simulated
// proxies (each a TLS ADS client with its own SVID) in a child process, then
// changes EndpointSlices and measures the time until every proxy has ACKed
// the change, pilot's CPU and memory, and the config size per proxy.
//
//	go run ./pilot/xds/loadgen -proxies 1000 -services 1000 -changes 20
//
// Telemetry (-telemetry) is everything the mesh's telemetry costs pilot:
// its own metrics and network-programming spans, and the sidecars' request
// metrics and tracing config (with tracing, every proxy also gets the
// traced listener and one SRDS scope per route table). Without it, all of
// that is off.
//
// With -repeat N it compares telemetry off and on instead: N runs of each,
// interleaved, every run in a fresh process, then a table of medians and
// on/off ratios (make bench-controlplane):
//
//	go run ./pilot/xds/loadgen -delta -sizes 100x100,1000x100 -changes 40 -repeat 3
//
// Traffic stays on 127.0.0.1. The child process keeps the clients' CPU out
// of pilot's rusage; on a small machine they still compete for cores, which
// the latency numbers include.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type options struct {
	proxies, services, namespaces, changes int
	delta, telemetry                       bool
	debounce, timeout                      time.Duration
	clients                                string // internal: run as the client process with this spec file
	json                                   bool
	cpuProfile                             string
	repeat                                 int    // compare telemetry off/on, this many runs each
	sizes                                  string // for -repeat: "<proxies>x<services>,..."
}

func main() {
	var o options
	flag.IntVar(&o.proxies, "proxies", 100, "simulated proxies (N)")
	flag.IntVar(&o.services, "services", 100, "Services in the mesh (M)")
	flag.IntVar(&o.namespaces, "namespaces", 10, "namespaces the Services and proxies are spread over")
	flag.IntVar(&o.changes, "changes", 20, "EndpointSlice changes to measure")
	flag.BoolVar(&o.delta, "delta", false, "use incremental (delta) xDS instead of state of the world")
	flag.BoolVar(&o.telemetry, "telemetry", false, "record pilot's metrics and network-programming spans (exported nowhere) and configure the sidecars' request metrics and tracing, to measure their cost (off: none of them)")
	flag.DurationVar(&o.debounce, "debounce", 100*time.Millisecond, "pilot's push debounce")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	flag.BoolVar(&o.json, "json", false, "print the result as JSON")
	flag.StringVar(&o.clients, "clients", "", "internal: run simulated proxies described by this file")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write pilot's CPU profile of the change phase to this file")
	flag.IntVar(&o.repeat, "repeat", 0, "compare telemetry off and on: this many runs of each, interleaved, each in a fresh process (-telemetry is ignored; -timeout bounds each run)")
	flag.StringVar(&o.sizes, "sizes", "", "with -repeat: <proxies>x<services> points to compare, comma-separated (default: -proxies x -services)")
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var err error
	switch {
	case o.clients != "":
		err = runClients(ctx, o.clients)
	case o.repeat > 0:
		err = compare(ctx, o, os.Stdout)
	default:
		ctx, cancelTimeout := context.WithTimeout(ctx, o.timeout)
		defer cancelTimeout()
		err = run(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
