package proxier

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/weftmesh/weft/proxy/conntrack"
	"github.com/weftmesh/weft/proxy/healthcheck"
	"github.com/weftmesh/weft/proxy/internal/fixtures"
	"github.com/weftmesh/weft/proxy/iptables"
	"github.com/weftmesh/weft/proxy/metrics"
	"github.com/weftmesh/weft/proxy/model"
	"github.com/weftmesh/weft/proxy/rules"
)

type env struct {
	p      *Proxier
	kernel *iptables.Fake
	ct     *conntrack.Fake
	clock  *clocktesting.FakeClock
	health *healthcheck.Node
	track  *model.Tracker
}

// newEnv is a proxier whose informers have synced.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := newUnsyncedEnv(t, noop.NewMeterProvider().Meter("test"))
	e.p.Synced()
	return e
}

// newUnsyncedEnv is a proxier whose informers are still listing.
func newUnsyncedEnv(t *testing.T, meter metric.Meter) *env {
	t.Helper()
	m, err := metrics.New(meter)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{kernel: iptables.NewFake(), ct: &conntrack.Fake{}, clock: clocktesting.NewFakeClock(time.Unix(5000, 0)), track: fixtures.Representative().Tracker()}
	e.health = healthcheck.NewNode(time.Minute, e.clock)
	e.p, err = New(Config{
		Tracker: e.track, ClusterCIDR: fixtures.ClusterCIDR, NodeIPs: fixtures.NodeIPs,
		MinSyncPeriod: time.Second, SyncPeriod: 30 * time.Second,
		IPTables: e.kernel, Conntrack: e.ct, Metrics: m, Health: e.health, Clock: e.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) sync(t *testing.T) {
	t.Helper()
	if err := e.p.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestFirstSyncIsFullThenPartial(t *testing.T) {
	e := newEnv(t)
	e.sync(t)
	if !e.health.Healthy() {
		t.Error("not healthy after a successful sync")
	}
	if rules, _ := e.kernel.Rules("nat", "WEFT-SERVICES"); len(rules) < 5 {
		t.Fatalf("nat WEFT-SERVICES after the first sync: %d rules", len(rules))
	}
	if e.ct.Calls != 1 {
		t.Errorf("full sync ran conntrack cleanup %d times, want 1", e.ct.Calls)
	}
	first, err := e.kernel.Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	e.track.SetSlice(fixtures.Slice("demo", "web", "http", 8080, v1.ProtocolTCP, "10.244.1.2@local"))
	e.clock.Step(time.Second)
	e.sync(t)
	if data := string(e.kernel.LastData); strings.Contains(data, "*filter") || strings.Contains(data, ":WEFT-SERVICES") {
		t.Errorf("one endpoint change rewrote the dispatch chains:\n%s", data)
	}
	if e.ct.Calls != 1 {
		t.Error("a TCP-only change ran conntrack cleanup")
	}
	e.track.SetSlice(fixtures.Slice("demo", "web", "http", 8080, v1.ProtocolTCP, "10.244.1.2@local", "10.244.2.3", "10.244.3.4", "10.244.3.9!notready"))
	e.clock.Step(61 * time.Minute) // periodic full resync is due
	e.sync(t)
	if !strings.Contains(string(e.kernel.LastData), "*filter") {
		t.Error("no full sync after the full sync period")
	}
	again, err := e.kernel.Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(first) {
		t.Error("after going back to the first state, the kernel differs from the first sync")
	}
}

func TestFlushedRulesAreNoticedByTheCanary(t *testing.T) {
	e := newEnv(t)
	e.sync(t)
	e.clock.Step(30 * time.Second)
	e.sync(t) // nothing changed, canary present: no restore
	if e.kernel.Restores != 1 {
		t.Fatalf("idle periodic sync wrote rules (%d restores)", e.kernel.Restores)
	}
	save, err := e.kernel.Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Someone flushes the nat table.
	if err := e.kernel.Restore(context.Background(), rules.Cleanup(rules.ParseSave(save))); err != nil {
		t.Fatal(err)
	}
	e.clock.Step(30 * time.Second)
	e.sync(t)
	if got, _ := e.kernel.Rules("nat", "WEFT-SERVICES"); len(got) == 0 {
		t.Error("rules not restored after they were flushed")
	}
}

func TestNoSyncBeforeInformersSynced(t *testing.T) {
	e := newUnsyncedEnv(t, noop.NewMeterProvider().Meter("test"))
	e.clock.Step(31 * time.Second) // the runner's periodic timer fires
	e.sync(t)
	if e.kernel.Restores != 0 {
		t.Fatalf("a sync before the informers synced wrote rules (%d restores)", e.kernel.Restores)
	}
	e.p.Synced()
	e.sync(t)
	if rules, _ := e.kernel.Rules("nat", "WEFT-SERVICES"); len(rules) < 5 {
		t.Fatalf("nat WEFT-SERVICES after the first sync: %d rules", len(rules))
	}
}

func TestRestoreFailureIsRetriedAsFullSync(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	e := newUnsyncedEnv(t, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test"))
	e.p.Synced()
	e.sync(t)
	e.kernel.FailRestore = func([]byte) error { return errors.New("xtables lock busy") }
	e.track.SetSlice(fixtures.Slice("demo", "web", "http", 8080, v1.ProtocolTCP, "10.244.1.2@local"))
	if err := e.p.Sync(context.Background()); err == nil {
		t.Fatal("sync with a failing restore returned no error")
	}
	if got := counterValue(t, reader, "weft_proxy_iptables_restore_failures"); got != 1 {
		t.Errorf("restore failures counted: %d, want 1", got)
	}
	e.kernel.FailRestore = nil
	e.sync(t)
	if !strings.Contains(string(e.kernel.LastData), "*filter") {
		t.Error("the sync after a failure was not a full sync")
	}
	if got := counterValue(t, reader, "weft_proxy_iptables_restore_failures"); got != 1 {
		t.Errorf("restore failures counted after recovery: %d, want still 1", got)
	}
	if rules, _ := e.kernel.Rules("nat", "WEFT-SVC-BC71FF10D116C321"); len(rules) != 2 {
		t.Errorf("demo/web after recovery has %d rules in its service chain, want 2 (masquerade + one endpoint)", len(rules))
	}
}

func TestServiceRejectedByKernelIsLeftOut(t *testing.T) {
	e := newEnv(t)
	e.kernel.RejectLine = func(line string) error {
		if strings.Contains(line, "demo/sticky") && strings.Contains(line, "-m recent") {
			return errors.New("recent: no such match")
		}
		return nil
	}
	if err := e.p.Sync(context.Background()); err == nil {
		t.Fatal("expected the first sync to fail")
	}
	e.sync(t)
	if _, ok := e.p.quarantined[types.NamespacedName{Namespace: "demo", Name: "sticky"}]; !ok {
		t.Fatal("demo/sticky not quarantined")
	}
	rules, _ := e.kernel.Rules("nat", "WEFT-SERVICES")
	joined := strings.Join(rules, "\n")
	if strings.Contains(joined, "demo/sticky") || !strings.Contains(joined, "demo/web") {
		t.Errorf("want demo/web programmed and demo/sticky left out, got:\n%s", joined)
	}
}

func TestStaleUDPConntrackRemovedOnEndpointChange(t *testing.T) {
	e := newEnv(t)
	e.sync(t)
	e.ct.Flows = []conntrack.Flow{
		{Protocol: 17, OrigDst: mustAP("10.96.0.13:53"), ReplySrc: mustAP("10.244.2.9:5353")},
	}
	e.track.SetSlice(fixtures.Slice("demo", "dns-external", "dns", 5353, v1.ProtocolUDP, "10.244.2.99"))
	e.clock.Step(time.Second)
	e.sync(t)
	if len(e.ct.Flows) != 0 {
		t.Errorf("flow to the removed UDP endpoint survived: %v", e.ct.Flows)
	}
}

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// counterValue sums an Int64 counter's data points in reader.
func counterValue(t *testing.T, reader *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, dp := range sum.DataPoints {
					total += dp.Value
				}
			}
		}
	}
	return total
}
