package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weftmesh/weft/pilot/telemetry"
)

func TestPrometheusNames(t *testing.T) {
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "weft-proxy"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := tel.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	m, err := New(tel.MeterProvider.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	handler := tel.Handler
	m.RecordSync(ctx, Sync{Full: true, Duration: 20 * time.Millisecond, At: time.Unix(1700000000, 0), Written: 12, NATRules: 10, FilterRules: 2})
	m.RecordFailure(ctx, false)
	m.RecordProgramming(ctx, 300*time.Millisecond)
	m.RecordConntrack(ctx, 3)

	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, err := io.ReadAll(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`weft_proxy_sync_proxy_rules_duration_seconds_bucket{mode="full",le="0.02"} 1`,
		`weft_proxy_sync_proxy_rules_last_timestamp_seconds 1.7e+09`,
		`weft_proxy_sync_proxy_rules_written_total{mode="full"} 12`,
		`weft_proxy_iptables_rules{table="nat"} 10`,
		`weft_proxy_network_programming_duration_seconds_count 1`,
		`weft_proxy_iptables_restore_failures_total{mode="partial"} 1`,
		`weft_proxy_conntrack_stale_entries_deleted_total 3`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", body)
	}
}
