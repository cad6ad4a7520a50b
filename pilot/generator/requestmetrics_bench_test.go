package generator_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

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
// one worker thread each, sequential requests): latency per request
// (ns/op) and the CPU both Envoys spent per request (envoy-cpu-us/op,
// from /proc, 10 ms resolution: use -benchtime=20000x or more).
func BenchmarkRequestMetrics(b *testing.B) {
	bin, ok := envoytest.Binary()
	if !ok {
		b.Skip("no envoy binary (make envoy)")
	}
	for _, v := range metricsVariants {
		b.Run(v.name, func(b *testing.B) {
			p := startMeshPairWith(b, bin, pairConfig{portName: "http", telemetry: v.telemetry})
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			get := func() {
				resp, err := client.Get(p.serviceURL + "/")
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %s", resp.Status)
				}
			}
			for range 200 {
				get() // connections, TLS sessions and stats exist before timing
			}
			cpu := cpuTicks(b, p.client.Pid) + cpuTicks(b, p.server.Pid)
			b.ResetTimer()
			for range b.N {
				get()
			}
			b.StopTimer()
			cpu = cpuTicks(b, p.client.Pid) + cpuTicks(b, p.server.Pid) - cpu
			// Linux reports process times in USER_HZ, 100 per second.
			b.ReportMetric(float64(cpu)*1e4/float64(b.N), "envoy-cpu-us/op")
		})
	}
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

// cpuTicks is a process's user+system CPU time in clock ticks
// (/proc/<pid>/stat fields 14 and 15).
func cpuTicks(b *testing.B, pid int) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name (field 2) may hold spaces; fields after it do not.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("parse /proc/%d/stat: %v %v", pid, err1, err2)
	}
	return utime + stime
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
