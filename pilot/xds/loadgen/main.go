// Command loadgen measures pilot's xDS control plane at scale: it runs the
// xDS server in this process on a model of M Services, starts N simulated
// proxies (each a TLS ADS client with its own SVID) in a child process, then
// changes EndpointSlices and measures the time until every proxy has ACKed
// the change, pilot's CPU and memory, and the config size per proxy.
//
//	go run ./pilot/xds/loadgen -proxies 1000 -services 1000 -changes 20
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
}

func main() {
	var o options
	flag.IntVar(&o.proxies, "proxies", 100, "simulated proxies (N)")
	flag.IntVar(&o.services, "services", 100, "Services in the mesh (M)")
	flag.IntVar(&o.namespaces, "namespaces", 10, "namespaces the Services and proxies are spread over")
	flag.IntVar(&o.changes, "changes", 20, "EndpointSlice changes to measure")
	flag.BoolVar(&o.delta, "delta", false, "use incremental (delta) xDS instead of state of the world")
	flag.BoolVar(&o.telemetry, "telemetry", false, "record pilot's metrics and network-programming spans (exported nowhere), to measure their cost")
	flag.DurationVar(&o.debounce, "debounce", 100*time.Millisecond, "pilot's push debounce")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	flag.BoolVar(&o.json, "json", false, "print the result as JSON")
	flag.StringVar(&o.clients, "clients", "", "internal: run simulated proxies described by this file")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write pilot's CPU profile of the change phase to this file")
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, o.timeout)
	defer cancelTimeout()
	var err error
	if o.clients != "" {
		err = runClients(ctx, o.clients)
	} else {
		err = run(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
