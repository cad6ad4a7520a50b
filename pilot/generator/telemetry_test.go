package generator_test

import (
	"strings"
	"testing"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/generator/envoytest"
	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
)

var meshTelemetry = generator.Telemetry{
	AccessLog: generator.AccessLog{Enabled: true, Namespaces: []string{ns}},
	Tracing: &generator.Tracing{
		CollectorHost: "weft-otel-collector.weft-system.svc.cluster.local", CollectorPort: 4317, SamplingPercent: 10,
	},
}

func telemetryScenarios() map[string]world {
	tcp := mt.Service(ns, "reviews-admin", "10.96.0.60", "reviews", mt.Port("tcp-admin", 7000, 7000))
	quiet := mt.Pod(ns, "reviews-3", "reviews", "10.0.2.12", "reviews", true)
	quiet.Labels[generator.LabelAccessLog] = "false"
	return map[string]world{
		// Access logs on the HTTP and TCP inbound chains, tracing on every
		// HTTP connection manager, and the collector cluster.
		"telemetry": {
			opts:     generator.Options{Telemetry: meshTelemetry},
			services: []*model.Service{reviewsSvc, tcp},
			slices:   []*model.EndpointSlice{mt.Slice(reviewsSvc, reviews1, reviews2), mt.Slice(tcp, reviews1)},
			pods:     []*model.Pod{productpage, reviews1, reviews2},
			proxy:    reviews1,
		},
		// A workload that opted out logs nothing but is still traced.
		"telemetry-opt-out": {
			opts:     generator.Options{Telemetry: meshTelemetry},
			services: []*model.Service{reviewsSvc},
			slices:   []*model.EndpointSlice{mt.Slice(reviewsSvc, quiet)},
			pods:     []*model.Pod{quiet},
			proxy:    quiet,
		},
	}
}

func TestTelemetryGolden(t *testing.T) {
	envoy, haveEnvoy := envoytest.Binary()
	for name, w := range telemetryScenarios() {
		t.Run(name, func(t *testing.T) {
			res, err := generator.Generate(w.opts, w.view(), w.proxy)
			if err != nil {
				t.Fatal(err)
			}
			got := goldenJSON(t, res)
			checkGolden(t, name, got)
			checkConsistent(t, res)
			if strings.Contains(string(got), `"direction": "inbound"`) != (name == "telemetry") {
				t.Errorf("access log present = %v, want it only where enabled", !(name == "telemetry"))
			}
			validateWithEnvoy(t, envoy, haveEnvoy, w.proxy, res)
		})
	}
}

func TestAccessLogSelection(t *testing.T) {
	pod := func(ns string, labels map[string]string) *model.Pod {
		return &model.Pod{Namespace: ns, Name: "p", Labels: labels}
	}
	on := map[string]string{generator.LabelAccessLog: "true"}
	off := map[string]string{generator.LabelAccessLog: "false"}
	for _, tc := range []struct {
		cfg  generator.AccessLog
		pod  *model.Pod
		want bool
	}{
		{generator.AccessLog{}, pod("a", nil), false},
		{generator.AccessLog{}, pod("a", on), true},
		{generator.AccessLog{Enabled: true}, pod("a", nil), true},
		{generator.AccessLog{Enabled: true}, pod("a", off), false},
		{generator.AccessLog{Enabled: true, Namespaces: []string{"b"}}, pod("a", nil), false},
		{generator.AccessLog{Enabled: true, Namespaces: []string{"b"}}, pod("b", nil), true},
	} {
		if got := tc.cfg.For(tc.pod); got != tc.want {
			t.Errorf("%+v for %s %v = %v, want %v", tc.cfg, tc.pod.Namespace, tc.pod.Labels, got, tc.want)
		}
	}
}

func TestTracingNeedsACollector(t *testing.T) {
	w := telemetryScenarios()["telemetry"]
	w.opts.Telemetry.Tracing = &generator.Tracing{CollectorHost: "collector"}
	if _, err := generator.Generate(w.opts, w.view(), w.proxy); err == nil || !strings.Contains(err.Error(), "collector") {
		t.Errorf("Generate with a collector without port: %v", err)
	}
}
