package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
	"github.com/weftmesh/weft/pilot/telemetry/netprog"
	"github.com/weftmesh/weft/pilot/xds"
	"github.com/weftmesh/weft/pilot/xds/xdstest"
)

// run is the pilot side: model, xDS server, the client process, then the
// measured changes.
func run(ctx context.Context, o options) error {
	st := model.NewStore(model.StoreConfig{RootNamespace: "weft-system"})
	w := buildWorld(st, o)

	ca, err := xdstest.NewCA()
	if err != nil {
		return err
	}
	serving, err := ca.Issue("spiffe://cluster.local/ns/weft-system/sa/pilot", []string{"pilot.weft-system.svc"}, nil)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	cfg := xds.Config{
		Listener: lis, Model: st, Debounce: o.debounce, MaxDebounce: 10 * o.debounce,
		TLS: xds.ServerTLSConfig(func() (*tls.Certificate, error) { return &serving.TLS, nil }, ca.Pool),
	}
	// The sidecars' telemetry: off, no request metrics and no tracing;
	// on, request metrics and tracing to a collector (the traced
	// listener, its SRDS scopes and the detour routes), as the chart
	// configures pilot.
	cfg.Generator.Telemetry.RequestMetricsDisabled = !o.telemetry
	if o.telemetry {
		cfg.Generator.Telemetry.Tracing = &generator.Tracing{
			CollectorHost: "weft-otel-collector.weft-system.svc.cluster.local", CollectorPort: 4317,
		}
		// What pilot records in production, minus the export: metrics to
		// a reader nobody collects, spans to a batcher that drops them.
		cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithIDGenerator(netprog.IDGenerator()))
		defer func() {
			if err := tp.Shutdown(context.Background()); err != nil {
				fmt.Fprintln(os.Stderr, "loadgen: tracer shutdown:", err)
			}
		}()
		cfg.TracerProvider = tp
	}
	srv, err := xds.New(cfg)
	if err != nil {
		return err
	}
	srvCtx, stopSrv := context.WithCancel(ctx)
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(srvCtx) }()
	defer func() {
		stopSrv()
		<-srvDone
	}()

	spec, err := clientsSpec(ca, lis.Addr().String(), w, o.delta)
	if err != nil {
		return err
	}
	cpu0 := cpuTime()
	start := time.Now()
	stopClients, err := startClients(ctx, spec)
	if err != nil {
		return err
	}
	defer stopClients()
	if _, err := waitSynced(ctx, srv, o.proxies, time.Time{}); err != nil {
		return fmt.Errorf("initial sync: %w", err)
	}
	res := result{
		Proxies: o.proxies, Services: o.services, Delta: o.delta, Telemetry: o.telemetry, Debounce: o.debounce.String(),
		InitialSync: time.Since(start).Round(time.Millisecond).String(), InitialCPU: (cpuTime() - cpu0).Seconds(),
	}
	for _, ps := range srv.SyncStatus() {
		res.ConfigBytes = append(res.ConfigBytes, ps.ConfigBytes)
	}

	if o.cpuProfile != "" {
		stop, err := startProfile(o.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	var lat []time.Duration
	cpu1, alloc1 := cpuTime(), allocated()
	for r := range o.changes {
		t0 := time.Now()
		w.change(st, (r/2*7)%o.services, r)
		d, err := waitSynced(ctx, srv, o.proxies, t0)
		if err != nil {
			return fmt.Errorf("change %d: %w", r, err)
		}
		lat = append(lat, d)
		time.Sleep(2 * o.debounce) // let the system settle between changes
	}
	res.CPUPerChange = (cpuTime() - cpu1).Seconds() / float64(max(o.changes, 1))
	res.AllocMiBPerChange = float64(allocated()-alloc1) / (1 << 20) / float64(max(o.changes, 1))
	res.RSSMiB, res.PeakRSSMiB = memory()
	res.summarize(lat)
	return res.print(os.Stdout, o.json)
}

func clientsSpec(ca *xdstest.CA, addr string, w *world, delta bool) (*clientSpec, error) {
	spec := &clientSpec{Addr: addr, RootCA: ca.PEM, Delta: delta}
	bySA := map[string]int{}
	for _, p := range w.proxies {
		id := "spiffe://cluster.local/ns/" + p.Namespace + "/sa/" + p.ServiceAccount
		i, ok := bySA[id]
		if !ok {
			c, err := ca.Issue(id, nil, nil)
			if err != nil {
				return nil, err
			}
			i = len(spec.Certs)
			bySA[id] = i
			spec.Certs = append(spec.Certs, certSpec{Cert: c.CertPEM, Key: c.KeyPEM})
		}
		spec.Nodes = append(spec.Nodes, nodeSpec{ID: p.Name + "." + p.Namespace, Cert: i})
	}
	return spec, nil
}

// startClients re-executes this binary as the client process.
func startClients(ctx context.Context, spec *clientSpec) (stop func(), err error) {
	dir, err := os.MkdirTemp("", "weft-loadgen")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	path := filepath.Join(dir, "spec.json")
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("write spec: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find executable: %w", err)
	}
	cmd := exec.CommandContext(ctx, self, "-clients", path)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("stdin pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start clients: %w", err)
	}
	return func() {
		_ = stdin.Close() // tells the clients to stop
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = os.RemoveAll(dir)
	}, nil
}

// waitSynced waits until all n proxies are connected and SYNCED on every
// type, each with an EDS ACK after since (if set), and returns the time from
// since to the last of those ACKs. The latency comes from the ACK times,
// not from when the poll noticed, so the poll can be slow: each takes the
// status lock over every proxy (~1.5 ms at 1000 proxies), CPU counted as
// pilot's and a wait for every ACK meanwhile.
func waitSynced(ctx context.Context, srv *xds.Server, n int, since time.Time) (time.Duration, error) {
	for {
		sum := srv.Summary("EDS")
		if sum.Proxies == n && sum.Synced == n && !sum.OldestAck.Before(since) {
			return sum.NewestAck.Sub(since), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%d of %d proxies connected, %d synced: %w", sum.Proxies, n, sum.Synced, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// pollInterval is how often waitSynced looks.
const pollInterval = 50 * time.Millisecond

type result struct {
	Proxies      int     `json:"proxies"`
	Services     int     `json:"services"`
	Delta        bool    `json:"delta"`
	Telemetry    bool    `json:"telemetry"`
	Debounce     string  `json:"debounce"`
	InitialSync  string  `json:"initialSync"`
	InitialCPU   float64 `json:"initialCpuSeconds"`
	P50ms        float64 `json:"p50Ms"`
	P99ms        float64 `json:"p99Ms"`
	MaxMs        float64 `json:"maxMs"`
	CPUPerChange float64 `json:"cpuSecondsPerChange"`
	// AllocMiBPerChange is what pilot allocated per change: the GC's work
	// follows it, and unlike time it does not depend on the neighbours.
	AllocMiBPerChange float64 `json:"allocMiBPerChange"`
	RSSMiB            float64 `json:"rssMiB"`
	PeakRSSMiB        float64 `json:"peakRssMiB"`
	ConfigBytes       []int   `json:"-"`
	BytesPerProxy     int     `json:"configBytesPerProxy"`
}

func (r *result) summarize(lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r.P50ms, r.P99ms = ms(pct(0.50)), ms(pct(0.99))
	if len(lat) > 0 {
		r.MaxMs = ms(lat[len(lat)-1])
	}
	total := 0
	for _, b := range r.ConfigBytes {
		total += b
	}
	r.BytesPerProxy = total / max(len(r.ConfigBytes), 1)
}

func (r *result) print(w io.Writer, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	return r.printRow(w, true)
}

// printRow prints the result as a Markdown table row, after the header if
// asked.
func (r *result) printRow(w io.Writer, header bool) error {
	if header {
		if _, err := io.WriteString(w,
			"| proxies | services | xDS | telemetry | debounce | initial sync (cpu s) | change→all ACKed p50 | p99 | max | pilot cpu s/change | alloc MiB/change | RSS MiB (peak) | config bytes/proxy |\n"+
				"|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"); err != nil {
			return err
		}
	}
	mode := "sotw"
	if r.Delta {
		mode = "delta"
	}
	_, err := fmt.Fprintf(w, "| %d | %d | %s | %v | %s | %s (%.1f) | %.0f ms | %.0f ms | %.0f ms | %.3f | %.1f | %.0f (%.0f) | %d |\n",
		r.Proxies, r.Services, mode, r.Telemetry, r.Debounce, r.InitialSync, r.InitialCPU, r.P50ms, r.P99ms, r.MaxMs,
		r.CPUPerChange, r.AllocMiBPerChange, r.RSSMiB, r.PeakRSSMiB, r.BytesPerProxy)
	return err
}

// discard drops exported spans: loadgen measures pilot's cost of recording
// them, not a collector's.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }
