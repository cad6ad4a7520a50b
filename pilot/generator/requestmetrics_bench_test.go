package generator_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/generator/envoytest"
	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
)

// metricsVariants are the configs compared: request metrics off (pilot's
// --request-metrics=false: what the generator made before them) and on
// (the default: the client's route tables set three headers, the server
// records).
var metricsVariants = []struct {
	name      string
	telemetry generator.Telemetry
}{
	{"off", generator.Telemetry{RequestMetricsDisabled: true}},
	{"on", generator.Telemetry{}},
}

// BenchmarkRequestMetrics is the per-request cost of request metrics on
// the path client sidecar → server sidecar (mTLS, HTTP/1.1 keep-alive,
// one worker thread each, sequential requests). One client and one server
// Envoy hold every variant's config side by side (startSharedPairs), and
// the variants take turns in blocks (interleavePairs), so neither a noisy
// minute on a shared machine nor what one pair of processes costs more
// than another is read as a variant's cost; b.N is the requests per
// variant. It reports, per variant, both Envoys' CPU per request and the
// median over rounds of its difference to "off" in the same round (µs and
// %), with a 95% interval.
func BenchmarkRequestMetrics(b *testing.B) {
	bin, ok := envoytest.Binary()
	if !ok {
		b.Skip("no envoy binary (make envoy)")
	}
	var names []string
	var cfgs []pairConfig
	for _, v := range metricsVariants {
		names = append(names, v.name)
		cfgs = append(cfgs, pairConfig{portName: "http", telemetry: v.telemetry, statsFlush: time.Minute})
	}
	interleavePairs(b, names, startSharedPairs(b, bin, cfgs...))
}

// interleavePairs sends b.N sequential requests through each pair, in
// rounds of blockSize requests per pair (the order rotating each round),
// and reports each pair's Envoy CPU per request (<name>-cpu-us/op, both
// sidecars) and, for every pair after the first, the median over rounds
// of its CPU per request minus the first's in the same round, both
// sidecars and the server's alone (<name>-delta-us/op, <name>-delta-%,
// <name>-server-delta-us/op), with the half-width of a 95% interval for
// the median of both (<name>-delta-ci95-us/op, ci95). CPU is the Envoys'
// time on CPU from the scheduler (/proc/<pid>/task/*/schedstat, ns).
// It returns how many requests each pair served, warm-up included.
func interleavePairs(b *testing.B, names []string, pairs []*meshPair) int {
	const warmup = 200
	const blockSize = 500
	clients := make([]*http.Client, len(pairs))
	for i, p := range pairs {
		clients[i] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		for range warmup {
			if err := getOK(clients[i], p.serviceURL+"/"); err != nil {
				b.Fatal(err) // connections, TLS sessions and stats exist before timing
			}
		}
	}
	rounds := max(1, b.N/blockSize)
	// CPU µs per request of each pair's client and server, per round.
	client, server := make([][]float64, len(pairs)), make([][]float64, len(pairs))
	perRequest := func(ns int64) float64 { return float64(ns) / 1e3 / blockSize }
	b.ResetTimer()
	for r := range rounds {
		for k := range pairs {
			i := (k + r) % len(pairs)
			c0, s0 := runTime(b, pairs[i].client.Pid), runTime(b, pairs[i].server.Pid)
			for range blockSize {
				if err := getOK(clients[i], pairs[i].serviceURL+"/"); err != nil {
					b.Fatal(err)
				}
			}
			client[i] = append(client[i], perRequest(runTime(b, pairs[i].client.Pid)-c0))
			server[i] = append(server[i], perRequest(runTime(b, pairs[i].server.Pid)-s0))
		}
	}
	b.StopTimer()
	for i, name := range names {
		b.ReportMetric(mean(client[i])+mean(server[i]), name+"-cpu-us/op")
		if i == 0 {
			continue
		}
		var both, pct, srv []float64
		for r := range rounds {
			base := client[0][r] + server[0][r]
			d := client[i][r] + server[i][r] - base
			both, pct = append(both, d), append(pct, 100*d/base)
			srv = append(srv, server[i][r]-server[0][r])
		}
		b.ReportMetric(median(both), name+"-delta-us/op")
		b.ReportMetric(ci95(both), name+"-delta-ci95-us/op")
		b.ReportMetric(median(pct), name+"-delta-%")
		b.ReportMetric(median(srv), name+"-server-delta-us/op")
	}
	return warmup + rounds*blockSize
}

// runTime sums the scheduler's on-CPU time of every thread of pid.
func runTime(b *testing.B, pid int) int64 {
	b.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("threads of %d: %v", pid, err)
	}
	var sum int64
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended
		}
		ns, err := strconv.ParseInt(strings.Fields(string(data))[0], 10, 64)
		if err != nil {
			b.Fatalf("parse %s: %v", t, err)
		}
		sum += ns
	}
	return sum
}

func mean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// ci95 is half the width of a 95% bootstrap interval for the median of
// xs: the rounds resampled with replacement 2000 times (fixed seed).
func ci95(xs []float64) float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	medians := make([]float64, 2000)
	sample := make([]float64, len(xs))
	for i := range medians {
		for j := range sample {
			sample[j] = xs[rng.IntN(len(xs))]
		}
		medians[i] = median(sample)
	}
	slices.Sort(medians)
	return (medians[len(medians)*975/1000] - medians[len(medians)*25/1000]) / 2
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkRequestMetricsConfigSize is what request metrics add to a
// proxy's config: a namespace of 100 HTTP Services, bytes of the
// serialized listeners (LDS) and route tables (RDS) per Service. The
// outbound side adds only three request headers per route table.
func BenchmarkRequestMetricsConfigSize(b *testing.B) {
	var services []*model.Service
	var slices []*model.EndpointSlice
	for i := range 100 {
		s := mt.Service(ns, fmt.Sprintf("svc%d", i), fmt.Sprintf("10.96.1.%d", i), "reviews", mt.Port("http", 9080, 9080))
		services, slices = append(services, s), append(slices, mt.Slice(s, reviews1))
	}
	w := world{services: services, slices: slices, pods: []*model.Pod{reviews1, productpage}, proxy: productpage}
	for _, v := range metricsVariants {
		b.Run(v.name, func(b *testing.B) {
			lds, rds := 0, 0
			for range b.N {
				res, err := generator.Generate(generator.Options{Telemetry: v.telemetry}, w.view(), w.proxy)
				if err != nil {
					b.Fatal(err)
				}
				lds, rds = 0, 0
				for _, l := range res.Listeners {
					lds += proto.Size(l)
				}
				for _, r := range res.Routes {
					rds += proto.Size(r)
				}
			}
			b.ReportMetric(float64(lds)/float64(len(services)), "LDS-bytes/service")
			b.ReportMetric(float64(rds)/float64(len(services)), "RDS-bytes/service")
		})
	}
}

// repack edits an HTTP connection manager or TCP proxy filter in place.
// Generated resources may share messages (the outbound part between
// proxies); the benchmarks generate their own.
func repack(f *listenerv3.Filter, hcm func(*hcmv3.HttpConnectionManager), tcp func(*tcpproxyv3.TcpProxy)) {
	var m proto.Message
	var edit func()
	switch f.GetName() {
	case wellknown.HTTPConnectionManager:
		h := &hcmv3.HttpConnectionManager{}
		m, edit = h, func() { hcm(h) }
	case wellknown.TCPProxy:
		t := &tcpproxyv3.TcpProxy{}
		m, edit = t, func() { tcp(t) }
	default:
		return
	}
	if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
		panic(err)
	}
	edit()
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
}
