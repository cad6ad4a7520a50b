package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	discovery "k8s.io/api/discovery/v1"
)

const metricsText = `# HELP kubeproxy_sync_proxy_rules_duration_seconds x
kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family="IPv4",le="0.001"} 0
kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family="IPv4"} 2.5
kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family="IPv6"} 0.5
kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"} 2
weft_proxy_sync_proxy_rules_duration_seconds_count{mode="full"} 1
weft_proxy_sync_proxy_rules_duration_seconds_count{mode="partial"} 3
weft_proxy_sync_proxy_rules_duration_seconds_count_extra 100
`

func TestSample(t *testing.T) {
	for series, want := range map[string]float64{
		`kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family="IPv4"}`:   2.5,
		`kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"}`: 2,
		`weft_proxy_sync_proxy_rules_duration_seconds_count`:                  4,
	} {
		if got, ok := sample(metricsText, series); !ok || got != want {
			t.Errorf("sample(%s) = %v, %v; want %v", series, got, ok, want)
		}
	}
	if _, ok := sample(metricsText, "missing_metric"); ok {
		t.Error("found a missing metric")
	}
}

func TestBenchObjectsAreOwnedAndUnallocated(t *testing.T) {
	svcs, slices := benchObjects("weft-proxy-bench-10", 10)
	if len(svcs) != 10 || len(slices) != 10 {
		t.Fatalf("%d services, %d slices; want 10 each", len(svcs), len(slices))
	}
	for _, s := range svcs {
		if s.Spec.ClusterIP != "" || s.Spec.Selector != nil || s.Namespace != "weft-proxy-bench-10" {
			t.Errorf("service %s: cluster IP %q selector %v namespace %s", s.Name, s.Spec.ClusterIP, s.Spec.Selector, s.Namespace)
		}
	}
	for _, s := range slices {
		if s.Labels[discovery.LabelManagedBy] != managedBy || n(s) < 2 || n(s) > 5 {
			t.Errorf("slice %s: labels %v, %d endpoints", s.Name, s.Labels, n(s))
		}
	}
}

func n(s *discovery.EndpointSlice) int { return len(s.Endpoints) }

func TestPrintTable(t *testing.T) {
	var b bytes.Buffer
	printTable(&b, []result{{proxy: "weft-proxy", services: 1000, rules: 12508, firstSync: 700 * time.Millisecond}})
	if !strings.Contains(b.String(), "weft-proxy") || !strings.Contains(b.String(), "12508") {
		t.Errorf("table:\n%s", b.String())
	}
}
