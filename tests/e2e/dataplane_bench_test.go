//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
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

// BenchmarkDataPlane drives httpbin on one node from fortio on another, once
// without sidecars and once with both sidecars and mutual TLS, and reports
// latency percentiles, achieved QPS and the sidecars' CPU and memory
// (from the kubelet's summary API). Duration: WEFT_BENCH_DURATION (60s).
//
//	go test -tags e2e -run '^$' -bench DataPlane -benchtime 1x ./tests/e2e/ -args -kubeconfig …
func BenchmarkDataPlane(b *testing.B) {
	duration := 60 * time.Second
	if d, err := time.ParseDuration(os.Getenv("WEFT_BENCH_DURATION")); err == nil {
		duration = d
	}
	ctx := context.Background()
	nodes, err := cluster.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) < 2 {
		b.Fatalf("need two nodes: %v", err)
	}
	clientNode, serverNode := nodes.Items[0].Name, nodes.Items[1].Name
	for _, meshed := range []bool{false, true} {
		name := map[bool]string{false: "no-mesh", true: "mesh-mtls"}[meshed]
		b.Run(name, func(b *testing.B) {
			labels := map[string]string{}
			if meshed {
				labels[annotation.InjectionLabel] = annotation.InjectionEnabled
			}
			ns := fmt.Sprintf("bench-dp-%s-%d", name, time.Now().Unix()%100000)
			if err := cluster.CreateNamespace(ctx, ns, labels); err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := cluster.DeleteNamespace(context.Background(), ns, 2*time.Minute); err != nil {
					b.Error(err)
				}
			}()
			server := podSpec(httpbinContainer())
			server.NodeSelector = map[string]string{"kubernetes.io/hostname": serverNode}
			client := podSpec(corev1.Container{Name: "fortio", Image: "weft.local/fortio:dev", ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"fortio", "server", "-http-port", "18080", "-grpc-port", "disabled", "-redirect-port", "disabled"}})
			client.NodeSelector = map[string]string{"kubernetes.io/hostname": clientNode}
			createAll(b, ns, deployment("httpbin", 1, server), service("httpbin", "httpbin"), deployment("fortio", 1, client))
			serverPods, err := cluster.WaitPodsReady(ctx, ns, "app=httpbin", 1, 3*time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			pods, err := cluster.WaitPodsReady(ctx, ns, "app=fortio", 1, 3*time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			url := fmt.Sprintf("http://httpbin.%s%s", ns, benchPath)
			// Warm up (and wait for the route to be in place) without measuring.
			if _, err := eventually(30*time.Second, func() error { _, err := runFortio(ctx, pods[0], url, 50, 2, 2*time.Second); return err }); err != nil {
				b.Fatal(err)
			}
			usage := sampleSidecars(ctx, ns, []string{clientNode, serverNode})
			b.ResetTimer()
			res, err := runFortio(ctx, pods[0], url, benchQPS, benchConns, duration)
			b.StopTimer()
			cpu, rss, usageErr := usage.stop()
			if err != nil {
				b.Fatal(err)
			}
			// A broken data plane answers fast with errors: its latencies
			// mean nothing, so any error beyond 0.1% fails the benchmark.
			if total := res.DurationHistogram.Count; res.errors()*1000 > total {
				b.Fatalf("%d of %d requests failed: codes %v", res.errors(), total, res.RetCodes)
			}
			b.ReportMetric(res.ActualQPS, "qps")
			for _, p := range res.DurationHistogram.Percentiles {
				switch p.Percentile {
				case 50, 90, 99:
					b.ReportMetric(p.Value*1000, fmt.Sprintf("ms-p%.0f", p.Percentile))
				}
			}
			b.ReportMetric(float64(res.errors()), "errors")
			if meshed {
				// Per sidecar, as Istio publishes it: the client's (fortio)
				// and the server's (httpbin).
				if usageErr != nil {
					b.Fatal(usageErr)
				}
				for role, pod := range map[string]string{"client": pods[0].Name, "server": serverPods[0].Name} {
					c, ok := cpu[pod]
					if !ok {
						b.Fatalf("no sidecar usage for %s pod %s in the kubelet summary (have %d sidecars)", role, pod, len(cpu))
					}
					b.ReportMetric(c*1000, role+"-sidecar-millicores")
					b.ReportMetric(rss[pod]/(1<<20), role+"-sidecar-MiB")
				}
			}
		})
	}
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

// sidecarUsage samples each sidecar's cumulative CPU and working set
// through the kubelet summary API while the load runs.
type sidecarUsage struct {
	stopc chan struct{}
	done  sync.WaitGroup
	// per pod: CPU in cores averaged over the run, peak working set in bytes
	cpu, maxRSS map[string]float64
	err         error
}

func sampleSidecars(ctx context.Context, ns string, nodes []string) *sidecarUsage {
	u := &sidecarUsage{stopc: make(chan struct{}), cpu: map[string]float64{}, maxRSS: map[string]float64{}}
	u.done.Add(1)
	go func() {
		defer u.done.Done()
		start, err := summaryContainers(ctx, ns, nodes)
		if err != nil {
			u.err = err
			return
		}
		startAt := time.Now()
		for {
			select {
			case <-u.stopc:
				end, err := summaryContainers(ctx, ns, nodes)
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
				now, err := summaryContainers(ctx, ns, nodes)
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
// pod's sidecar.
func (u *sidecarUsage) stop() (cpu, rss map[string]float64, err error) {
	close(u.stopc)
	u.done.Wait()
	return u.cpu, u.maxRSS, u.err
}

// summaryContainers returns the weft-sidecar container of every pod of ns
// on the nodes, by pod name, from the kubelets' summary API.
func summaryContainers(ctx context.Context, ns string, nodes []string) (map[string]summaryContainer, error) {
	out := map[string]summaryContainer{}
	for _, node := range nodes {
		raw, err := cluster.Client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", node, "proxy/stats/summary").DoRaw(ctx)
		if err != nil {
			return nil, fmt.Errorf("kubelet summary of %s: %w", node, err)
		}
		var s struct {
			Pods []struct {
				PodRef     struct{ Name, Namespace string }
				Containers []summaryContainer
			}
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("decode kubelet summary of %s: %w", node, err)
		}
		for _, p := range s.Pods {
			if p.PodRef.Namespace != ns {
				continue
			}
			for _, c := range p.Containers {
				if c.Name == sidecarName {
					out[p.PodRef.Name] = c
				}
			}
		}
	}
	return out, nil
}

type summaryContainer struct {
	Name string
	CPU  struct{ UsageCoreNanoSeconds float64 }
	Mem  struct{ WorkingSetBytes float64 } `json:"memory"`
}
