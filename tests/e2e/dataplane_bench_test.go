//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftmesh/weft/api/annotation"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The load of Istio's published sidecar benchmark: 1000 requests per second
// over 16 connections with 1 KB responses.
const (
	benchQPS   = 1000
	benchConns = 16
	benchPath  = "/bytes/1024"
)

// BenchmarkDataPlane drives httpbin on one node from fortio on another in
// four settings: without sidecars; with both sidecars and mutual TLS and
// the data plane's telemetry off (a Telemetry resource disables request
// metrics and tracing; Envoy's built-in stats cannot be turned off); with
// request metrics on and tracing off; and with the mesh's telemetry on
// (request metrics, and the Envoy tracer at the mesh's sampling reporting
// to the chart's collector). It reports latency percentiles, achieved QPS,
// the sidecars' CPU and memory and the collector's CPU (from the kubelet
// summary API) per round, then a table of medians.
//
// The settings are measured in rounds, each round in a rotated order, in
// one cluster with the same pods: on two shared cores the machine drifts
// by more than the effects measured, so only interleaved runs compare.
// Duration per measurement: WEFT_BENCH_DURATION (60s); rounds:
// WEFT_BENCH_ROUNDS (3).
//
//	go test -tags e2e -run '^$' -bench DataPlane -benchtime 1x ./tests/e2e/ -args -kubeconfig …
func BenchmarkDataPlane(b *testing.B) {
	duration := 60 * time.Second
	if d, err := time.ParseDuration(os.Getenv("WEFT_BENCH_DURATION")); err == nil {
		duration = d
	}
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("WEFT_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	ctx := context.Background()
	nodes, err := cluster.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) < 2 {
		b.Fatalf("need two nodes: %v", err)
	}
	clientNode, serverNode := nodes.Items[0].Name, nodes.Items[1].Name
	if _, err := collectorPods(ctx); err != nil {
		b.Fatalf("telemetry on needs the chart's collector (telemetry.collector.enabled): %v", err)
	}
	plain := newBenchApps(b, "plain", false, clientNode, serverNode)
	mesh := newBenchApps(b, "mesh", true, clientNode, serverNode)
	settings := []dpSetting{
		{name: "no-mesh", apps: plain},
		{name: "mesh-mtls/telemetry=off", apps: mesh},
		{name: "mesh-mtls/telemetry=metrics", apps: mesh, metrics: true},
		{name: "mesh-mtls/telemetry=on", apps: mesh, metrics: true, tracing: true},
	}
	results := map[string][]dpResult{}
	for r := range rounds {
		for i := range settings {
			st := settings[(i+r)%len(settings)]
			b.Run(fmt.Sprintf("%s/round=%d", st.name, r+1), func(b *testing.B) {
				res := measureDataPlane(b, st, duration)
				results[st.name] = append(results[st.name], res)
			})
		}
	}
	printDataPlaneTable(b, settings, results)
}

// dpSetting is one configuration the data-plane benchmark measures.
type dpSetting struct {
	name string
	apps *benchApps
	// Meshed only: the mesh's request metrics and tracing on, else off
	// for the namespace.
	metrics, tracing bool
}

// dpResult is one measurement.
type dpResult struct {
	qps, p50, p90, p99   float64 // ms
	clientCPU, serverCPU float64 // millicores
	clientMiB, serverMiB float64
	collectorCPU         float64 // millicores, every container of the collector pod
}

// benchApps are httpbin on the server node and fortio on the client node
// in one namespace, kept for every round.
type benchApps struct {
	ns                     string
	meshed                 bool
	client, server         corev1.Pod
	clientNode, serverNode string
}

func newBenchApps(b *testing.B, name string, meshed bool, clientNode, serverNode string) *benchApps {
	ctx := context.Background()
	labels := map[string]string{}
	if meshed {
		labels[annotation.InjectionLabel] = annotation.InjectionEnabled
	}
	ns := fmt.Sprintf("bench-dp-%s-%d", name, time.Now().Unix()%100000)
	if err := cluster.CreateNamespace(ctx, ns, labels); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := cluster.DeleteNamespace(context.Background(), ns, 2*time.Minute); err != nil {
			b.Error(err)
		}
	})
	server := podSpec(httpbinContainer())
	server.NodeSelector = map[string]string{"kubernetes.io/hostname": serverNode}
	client := podSpec(corev1.Container{Name: "fortio", Image: "weft.local/fortio:dev", ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"fortio", "server", "-http-port", "18080", "-grpc-port", "disabled", "-redirect-port", "disabled"}})
	client.NodeSelector = map[string]string{"kubernetes.io/hostname": clientNode}
	createAll(b, ns, deployment("httpbin", 1, server), service("httpbin", "httpbin"), deployment("fortio", 1, client))
	servers, err := cluster.WaitPodsReady(ctx, ns, "app=httpbin", 1, 3*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	clients, err := cluster.WaitPodsReady(ctx, ns, "app=fortio", 1, 3*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	return &benchApps{ns: ns, meshed: meshed, client: clients[0], server: servers[0], clientNode: clientNode, serverNode: serverNode}
}

func (a *benchApps) url() string { return fmt.Sprintf("http://httpbin.%s%s", a.ns, benchPath) }

// benchTelemetry is the Telemetry resource the benchmark puts in its
// meshed namespace to turn request metrics and/or tracing off; without it
// the namespace has the mesh's settings (both on in the local cluster).
const benchTelemetry = `apiVersion: mesh.weft.dev/v1alpha1
kind: Telemetry
metadata: {name: bench}
spec:
`

// setTelemetry switches the namespace's request metrics and tracing and
// waits until the sidecars' config has (or lacks) them: the tracing
// detour on both, the stats access logger on the server's (request
// metrics are recorded by the destination only).
func (a *benchApps) setTelemetry(b *testing.B, metrics, tracing bool) {
	ctx := context.Background()
	var err error
	if metrics && tracing {
		err = cluster.Delete(ctx, []byte(strings.Replace(benchTelemetry, "metadata: {", "metadata: {namespace: "+a.ns+", ", 1)))
	} else {
		spec := benchTelemetry
		if !metrics {
			spec += "  metrics: {disabled: true}\n"
		}
		if !tracing {
			spec += "  tracing: {disabled: true}\n"
		}
		err = cluster.ApplyIn(ctx, a.ns, []byte(spec))
	}
	if err != nil {
		b.Fatalf("set telemetry metrics=%v tracing=%v in %s: %v", metrics, tracing, a.ns, err)
	}
	took, err := eventually(time.Minute, func() error {
		// Tracing on: the client's route tables start with the detour to
		// the traced listener, and the server has a traced inbound one.
		routes := a.proxyConfig(b, "routes", a.client)
		if got := strings.Contains(routes, "weft.trace-random"); got != tracing {
			return fmt.Errorf("%s: tracing detour configured %v, want %v", a.client.Name, got, tracing)
		}
		dump := a.proxyConfig(b, "listeners", a.server)
		if got := strings.Contains(dump, "traced|inbound|"); got != tracing {
			return fmt.Errorf("%s: traced inbound listener configured %v, want %v", a.server.Name, got, tracing)
		}
		if got := strings.Contains(dump, "envoy.access_loggers.stats"); got != metrics {
			return fmt.Errorf("%s: request metrics configured %v, want %v", a.server.Name, got, metrics)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("telemetry metrics=%v tracing=%v in %s: in both sidecars' config after %v", metrics, tracing, a.ns, took.Round(100*time.Millisecond))
}

// proxyConfig is the JSON of one part (listeners, routes) of pod's
// sidecar config dump (meshctl proxy-config).
func (a *benchApps) proxyConfig(b *testing.B, part string, p corev1.Pod) string {
	r := meshctl(b, time.Minute, "proxy-config", part, p.Name+"."+p.Namespace, "-o", "json")
	if r.code != 0 {
		b.Fatalf("meshctl proxy-config %s %s: exit %d: %s", part, p.Name, r.code, r.errOut)
	}
	return r.out
}

func measureDataPlane(b *testing.B, st dpSetting, duration time.Duration) dpResult {
	ctx := context.Background()
	a := st.apps
	var res dpResult
	if a.meshed {
		a.setTelemetry(b, st.metrics, st.tracing)
	}
	// Warm up (and wait for the route to be in place) without measuring.
	if _, err := eventually(30*time.Second, func() error {
		_, err := runFortio(ctx, a.client, a.url(), 50, 2, 2*time.Second)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	usage := sampleUsage(ctx, []usageTarget{
		{ns: a.ns, nodes: []string{a.clientNode, a.serverNode}, container: sidecarName},
		{ns: "weft-system", nodes: nil, podPrefix: "weft-otel-collector-"},
	})
	b.ResetTimer()
	out, err := runFortio(ctx, a.client, a.url(), benchQPS, benchConns, duration)
	b.StopTimer()
	cpu, rss, usageErr := usage.stop()
	if err != nil {
		b.Fatal(err)
	}
	// A broken data plane answers fast with errors: its latencies mean
	// nothing, so any error beyond 0.1% fails the benchmark.
	if total := out.DurationHistogram.Count; out.errors()*1000 > total {
		b.Fatalf("%d of %d requests failed: codes %v", out.errors(), total, out.RetCodes)
	}
	if usageErr != nil {
		b.Fatal(usageErr)
	}
	res.qps = out.ActualQPS
	b.ReportMetric(out.ActualQPS, "qps")
	for _, p := range out.DurationHistogram.Percentiles {
		ms := p.Value * 1000
		switch p.Percentile {
		case 50:
			res.p50 = ms
		case 90:
			res.p90 = ms
		case 99:
			res.p99 = ms
		default:
			continue
		}
		b.ReportMetric(ms, fmt.Sprintf("ms-p%.0f", p.Percentile))
	}
	b.ReportMetric(float64(out.errors()), "errors")
	for pod, c := range cpu {
		if strings.HasPrefix(pod, "weft-otel-collector-") {
			res.collectorCPU += c * 1000
		}
	}
	b.ReportMetric(res.collectorCPU, "collector-millicores")
	if a.meshed {
		// Per sidecar, as Istio publishes it: the client's (fortio) and
		// the server's (httpbin).
		for role, pod := range map[string]string{"client": a.client.Name, "server": a.server.Name} {
			c, ok := cpu[pod]
			if !ok {
				b.Fatalf("no sidecar usage for %s pod %s in the kubelet summary (have %v)", role, pod, slices.Collect(maps.Keys(cpu)))
			}
			b.ReportMetric(c*1000, role+"-sidecar-millicores")
			b.ReportMetric(rss[pod]/(1<<20), role+"-sidecar-MiB")
		}
		res.clientCPU, res.serverCPU = cpu[a.client.Name]*1000, cpu[a.server.Name]*1000
		res.clientMiB, res.serverMiB = rss[a.client.Name]/(1<<20), rss[a.server.Name]/(1<<20)
	}
	return res
}

// printDataPlaneTable prints the medians of every setting over the rounds
// and, for the meshed settings, telemetry on relative to off.
func printDataPlaneTable(b *testing.B, settings []dpSetting, results map[string][]dpResult) {
	median := func(v []float64) float64 {
		v = slices.Sorted(slices.Values(v))
		if len(v) == 0 {
			return 0
		}
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	med := func(rs []dpResult, f func(dpResult) float64) float64 {
		v := make([]float64, 0, len(rs))
		for _, r := range rs {
			v = append(v, f(r))
		}
		return median(v)
	}
	cols := []struct {
		name string
		f    func(dpResult) float64
	}{
		{"qps", func(r dpResult) float64 { return r.qps }},
		{"p50 ms", func(r dpResult) float64 { return r.p50 }},
		{"p90 ms", func(r dpResult) float64 { return r.p90 }},
		{"p99 ms", func(r dpResult) float64 { return r.p99 }},
		{"client sidecar m", func(r dpResult) float64 { return r.clientCPU }},
		{"server sidecar m", func(r dpResult) float64 { return r.serverCPU }},
		{"client MiB", func(r dpResult) float64 { return r.clientMiB }},
		{"server MiB", func(r dpResult) float64 { return r.serverMiB }},
		{"collector m", func(r dpResult) float64 { return r.collectorCPU }},
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nmedians of %d rounds (fortio %d qps, %d connections, %s)\n| setting |", len(results[settings[0].name]), benchQPS, benchConns, benchPath)
	for _, c := range cols {
		fmt.Fprintf(&sb, " %s |", c.name)
	}
	sb.WriteString("\n|---|" + strings.Repeat("---:|", len(cols)) + "\n")
	row := func(name string, vals func(c int) string) {
		fmt.Fprintf(&sb, "| %s |", name)
		for i := range cols {
			fmt.Fprintf(&sb, " %s |", vals(i))
		}
		sb.WriteString("\n")
	}
	for _, st := range settings {
		rs := results[st.name]
		row(st.name, func(c int) string { return fmt.Sprintf("%.2f", med(rs, cols[c].f)) })
	}
	// Each meshed setting relative to telemetry off: the median, over the
	// rounds, of the ratio to off measured in the same round (the machine
	// drifts between rounds more than within one), and the range.
	off := results["mesh-mtls/telemetry=off"]
	for _, st := range settings {
		if !st.apps.meshed || (!st.metrics && !st.tracing) {
			continue
		}
		rs := results[st.name]
		row(strings.TrimPrefix(st.name, "mesh-mtls/telemetry=")+" / off, same round", func(c int) string {
			if c >= len(cols)-1 { // the collector idles when off: a ratio says nothing
				return "—"
			}
			var ratios []float64
			for r := range min(len(rs), len(off)) {
				if o := cols[c].f(off[r]); o != 0 {
					ratios = append(ratios, cols[c].f(rs[r])/o-1)
				}
			}
			if len(ratios) == 0 {
				return "—"
			}
			pct := func(x float64) string { return fmt.Sprintf("%+.1f%%", x*100) }
			return fmt.Sprintf("%s (%s…%s)", pct(median(ratios)), pct(slices.Min(ratios)), pct(slices.Max(ratios)))
		})
	}
	b.Log(sb.String())
	fmt.Print(sb.String())
}

// fortioResult is the part of fortio's JSON result the benchmark reads.
type fortioResult struct {
	ActualQPS         float64
	RetCodes          map[string]int
	DurationHistogram struct {
		Count       int
		Percentiles []struct{ Percentile, Value float64 }
	}
}

func (r fortioResult) errors() int {
	n := 0
	for code, c := range r.RetCodes {
		if code != "200" {
			n += c
		}
	}
	return n
}

func runFortio(ctx context.Context, pod corev1.Pod, url string, qps, conns int, d time.Duration) (fortioResult, error) {
	out, _, err := cluster.Exec(ctx, pod.Namespace, pod.Name, "fortio", "fortio", "load", "-quiet", "-json", "-",
		"-qps", fmt.Sprint(qps), "-c", fmt.Sprint(conns), "-t", d.String(), "-p", "50,90,99", url)
	if err != nil {
		return fortioResult{}, err
	}
	var r fortioResult
	if err := json.Unmarshal([]byte(out[strings.IndexByte(out, '{'):]), &r); err != nil {
		return r, fmt.Errorf("decode fortio output: %w", err)
	}
	if r.DurationHistogram.Count == 0 {
		return r, fmt.Errorf("fortio made no requests: %s", out)
	}
	return r, nil
}

// usageTarget selects containers in the kubelet summary: in ns, on nodes
// (nil: every node), named container (empty: every container, summed per
// pod) of pods whose name starts with podPrefix.
type usageTarget struct {
	ns        string
	nodes     []string
	container string
	podPrefix string
}

// podUsage samples the selected containers' cumulative CPU and working set
// through the kubelet summary API while the load runs.
type podUsage struct {
	stopc chan struct{}
	done  sync.WaitGroup
	// per pod: CPU in cores averaged over the run, peak working set in bytes
	cpu, maxRSS map[string]float64
	err         error
}

func sampleUsage(ctx context.Context, targets []usageTarget) *podUsage {
	u := &podUsage{stopc: make(chan struct{}), cpu: map[string]float64{}, maxRSS: map[string]float64{}}
	u.done.Add(1)
	go func() {
		defer u.done.Done()
		start, err := summaryUsage(ctx, targets)
		if err != nil {
			u.err = err
			return
		}
		startAt := time.Now()
		for {
			select {
			case <-u.stopc:
				end, err := summaryUsage(ctx, targets)
				if err != nil {
					u.err = err
					return
				}
				secs := time.Since(startAt).Seconds()
				for pod, c := range end {
					u.cpu[pod] = (c.CPU.UsageCoreNanoSeconds - start[pod].CPU.UsageCoreNanoSeconds) / 1e9 / secs
					u.maxRSS[pod] = max(u.maxRSS[pod], c.Mem.WorkingSetBytes)
				}
				return
			case <-time.After(5 * time.Second):
				now, err := summaryUsage(ctx, targets)
				if err != nil {
					u.err = err
					return
				}
				for pod, c := range now {
					u.maxRSS[pod] = max(u.maxRSS[pod], c.Mem.WorkingSetBytes)
				}
			}
		}
	}()
	return u
}

// stop ends the sampling and returns CPU (cores) and peak RSS (bytes) per
// pod.
func (u *podUsage) stop() (cpu, rss map[string]float64, err error) {
	close(u.stopc)
	u.done.Wait()
	return u.cpu, u.maxRSS, u.err
}

// summaryUsage returns the selected containers' usage by pod name, from the
// kubelets' summary API (containers of one pod summed).
func summaryUsage(ctx context.Context, targets []usageTarget) (map[string]summaryContainer, error) {
	out := map[string]summaryContainer{}
	summaries := map[string][]summaryPod{}
	for _, tg := range targets {
		nodes := tg.nodes
		if nodes == nil {
			list, err := cluster.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("list nodes: %w", err)
			}
			for _, n := range list.Items {
				nodes = append(nodes, n.Name)
			}
		}
		for _, node := range nodes {
			pods, ok := summaries[node]
			if !ok {
				var err error
				if pods, err = kubeletSummary(ctx, node); err != nil {
					return nil, err
				}
				summaries[node] = pods
			}
			for _, p := range pods {
				if p.PodRef.Namespace != tg.ns || !strings.HasPrefix(p.PodRef.Name, tg.podPrefix) {
					continue
				}
				for _, c := range p.Containers {
					if tg.container != "" && c.Name != tg.container {
						continue
					}
					sum := out[p.PodRef.Name]
					sum.CPU.UsageCoreNanoSeconds += c.CPU.UsageCoreNanoSeconds
					sum.Mem.WorkingSetBytes += c.Mem.WorkingSetBytes
					out[p.PodRef.Name] = sum
				}
			}
		}
	}
	return out, nil
}

type summaryPod struct {
	PodRef     struct{ Name, Namespace string }
	Containers []summaryContainer
}

func kubeletSummary(ctx context.Context, node string) ([]summaryPod, error) {
	raw, err := cluster.Client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", node, "proxy/stats/summary").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("kubelet summary of %s: %w", node, err)
	}
	var s struct{ Pods []summaryPod }
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("decode kubelet summary of %s: %w", node, err)
	}
	return s.Pods, nil
}

// collectorPods lists the chart's collector pods.
func collectorPods(ctx context.Context) ([]corev1.Pod, error) {
	pods, err := cluster.Client.CoreV1().Pods("weft-system").List(ctx, metav1.ListOptions{LabelSelector: collectorSelector})
	if err != nil {
		return nil, err
	}
	if len(pods.Items) == 0 {
		return nil, fmt.Errorf("no pod %s in weft-system", collectorSelector)
	}
	return pods.Items, nil
}

type summaryContainer struct {
	Name string
	CPU  struct{ UsageCoreNanoSeconds float64 }
	Mem  struct{ WorkingSetBytes float64 } `json:"memory"`
}
