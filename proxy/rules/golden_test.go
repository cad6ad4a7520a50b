package rules_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/weftmesh/weft/proxy/internal/fixtures"
	"github.com/weftmesh/weft/proxy/iptables"
	"github.com/weftmesh/weft/proxy/rules"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		mustNoErr(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	mustNoErr(t, err)
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got; run with -update to accept):\n%s", path, diff)
	}
}

func TestGoldenFullSync(t *testing.T) {
	tr := representative().Tracker()
	c := tr.Take()
	if err := c.Errors[types.NamespacedName{Namespace: "demo", Name: "sctp"}]; err == nil || !strings.Contains(err.Error(), "SCTP") {
		t.Errorf("SCTP service without kernel support: error = %v, want it reported", err)
	}
	pl := newPlanner().Plan(input(c, true, nil))
	golden(t, "full.golden", pl.Data)

	again := newPlanner().Plan(input(c, true, nil))
	if string(again.Data) != string(pl.Data) {
		t.Error("a second full sync of the same state rendered different rules")
	}
}

func TestGoldenPartialSync(t *testing.T) {
	w := representative()
	tr := w.Tracker()
	p := newPlanner()
	full := p.Plan(input(tr.Take(), true, nil))
	p.Commit(full)

	if noop := p.Plan(input(tr.Take(), false, nil)); len(noop.Data) != 0 {
		t.Errorf("sync without changes wrote:\n%s", noop.Data)
	}

	// One endpoint of demo/web goes away.
	tr.SetSlice(makeSlice("demo", "web", "http", 8080, v1.ProtocolTCP, "10.244.1.2@local", "10.244.2.3"))
	pl := p.Plan(input(tr.Take(), false, nil))
	if pl.Full {
		t.Fatal("endpoint change planned a full sync")
	}
	golden(t, "partial-endpoint.golden", pl.Data)
	p.Commit(pl)

	// demo/empty gains its first endpoint: its REJECT goes away (filter) and
	// the dispatch chains change.
	tr.SetSlice(makeSlice("demo", "empty", "", 80, v1.ProtocolTCP, "10.244.2.30"))
	golden(t, "partial-first-endpoint.golden", p.Plan(input(tr.Take(), false, nil)).Data)
}

// TestPartialEqualsFull drives a sequence of changes through partial syncs
// and checks that the kernel ends up exactly as after one full sync of the
// final state.
func TestPartialEqualsFull(t *testing.T) {
	ctx := context.Background()
	w := representative()
	tr := w.Tracker()
	p := newPlanner()
	kernel := iptables.NewFake()
	sync := func(full bool) *rules.Plan {
		t.Helper()
		var existing *rules.Existing
		if full {
			save, err := kernel.Save(ctx)
			mustNoErr(t, err)
			existing = rules.ParseSave(save)
		}
		pl := p.Plan(input(tr.Take(), full, existing))
		mustNoErr(t, kernel.Restore(ctx, pl.Data))
		p.Commit(pl)
		return pl
	}
	sync(true)

	steps := []func(){
		func() {
			tr.SetSlice(makeSlice("demo", "web", "http", 8080, v1.ProtocolTCP, "10.244.1.2@local", "10.244.2.3"))
		},
		func() { tr.DeleteService("demo", "nodeport") },
		func() { tr.SetSlice(makeSlice("demo", "empty", "", 80, v1.ProtocolTCP, "10.244.2.30")) },
		func() { tr.SetSlice(makeSlice("demo", "lb-local", "https", 8443, v1.ProtocolTCP, "10.244.2.8")) },
		func() {
			tr.SetService(makeSvc("new", "svc", v1.ServiceTypeNodePort, "10.96.2.2", []v1.ServicePort{tcp("", 80, 30999)}))
			tr.SetSlice(makeSlice("new", "svc", "", 80, v1.ProtocolTCP, "10.244.3.40"))
		},
		func() { tr.DeleteSlice(makeSlice("demo", "sticky", "", 8080, v1.ProtocolTCP)) },
		func() {
			tr.SetService(makeSvc("demo", "web", v1.ServiceTypeClusterIP, "10.96.0.10", []v1.ServicePort{tcp("http", 80, 0)}, withAffinity(30)))
		},
	}
	for _, step := range steps {
		step()
		if pl := sync(false); pl.Full {
			t.Fatal("change planned a full sync")
		}
	}
	got, err := kernel.Save(ctx)
	mustNoErr(t, err)

	fresh := iptables.NewFake()
	pl := newPlanner().Plan(input(tr.Take(), true, nil))
	mustNoErr(t, fresh.Restore(ctx, pl.Data))
	want, err := fresh.Save(ctx)
	mustNoErr(t, err)
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("partial syncs diverged from a full sync (-full +partial):\n%s", diff)
	}
	if pl.Totals != p.Totals() {
		t.Errorf("rule totals after partial syncs = %+v, full sync says %+v", p.Totals(), pl.Totals)
	}
}

func TestFullSyncRemovesStaleChainsAndAddsHooksOnce(t *testing.T) {
	ctx := context.Background()
	kernel := iptables.NewFake()
	mustNoErr(t, kernel.Restore(ctx, []byte("*nat\n:WEFT-SVC-0000000000000000 - [0:0]\n:WEFT-SEP-0000000000000000 - [0:0]\n"+
		"-A WEFT-SVC-0000000000000000 -m comment --comment \"gone/svc\" -j WEFT-SEP-0000000000000000\n"+
		":WEFT-GUARD - [0:0]\n-A POSTROUTING -m comment --comment \"someone else\" -j WEFT-GUARD\nCOMMIT\n")))
	w := representative()
	for range 2 {
		save, err := kernel.Save(ctx)
		mustNoErr(t, err)
		pl := newPlanner().Plan(input(w.Tracker().Take(), true, rules.ParseSave(save)))
		mustNoErr(t, kernel.Restore(ctx, pl.Data))
	}
	if _, ok := kernel.Rules("nat", "WEFT-SVC-0000000000000000"); ok {
		t.Error("stale service chain survived a full sync")
	}
	if _, ok := kernel.Rules("nat", "WEFT-GUARD"); !ok {
		t.Error("a full sync deleted another component's chain")
	}
	for _, h := range rules.Hooks {
		got, _ := kernel.Rules(h.Table, h.From)
		n := 0
		for _, r := range got {
			if strings.HasSuffix(r, "-j "+h.To) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s %s → %s: %d hooks after two full syncs, want 1", h.Table, h.From, h.To, n)
		}
	}
}

func TestCleanupRemovesOnlyProxyState(t *testing.T) {
	ctx := context.Background()
	kernel := iptables.NewFake()
	mustNoErr(t, kernel.Restore(ctx, []byte("*filter\n:WEFT-GUARD - [0:0]\n-A FORWARD -m comment --comment guard -j WEFT-GUARD\nCOMMIT\n")))
	pl := newPlanner().Plan(input(representative().Tracker().Take(), true, nil))
	mustNoErr(t, kernel.Restore(ctx, pl.Data))
	save, err := kernel.Save(ctx)
	mustNoErr(t, err)
	mustNoErr(t, kernel.Restore(ctx, rules.Cleanup(rules.ParseSave(save))))
	save, err = kernel.Save(ctx)
	mustNoErr(t, err)
	want := "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:WEFT-GUARD - [0:0]\n" +
		"-A FORWARD -m comment --comment guard -j WEFT-GUARD\nCOMMIT\n" +
		"*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n"
	if diff := cmp.Diff(want, string(save)); diff != "" {
		t.Errorf("after cleanup (-want +got):\n%s", diff)
	}
	if again := rules.Cleanup(rules.ParseSave(save)); len(again) != 0 {
		t.Errorf("second cleanup is not a no-op:\n%s", again)
	}
}

func TestServiceAtBlamesTheServiceOfAFailingLine(t *testing.T) {
	// BulkRules: 1 puts "-Z" atop every table, shifting every line.
	pl := rules.NewPlanner(rules.Config{ClusterCIDR: fixtures.ClusterCIDR, BulkRules: 1}).Plan(input(representative().Tracker().Take(), true, nil))
	if !strings.HasPrefix(string(pl.Data), "*filter\n-Z\n") || !strings.Contains(string(pl.Data), "*nat\n-Z\n") {
		t.Fatalf("bulk restore does not start its tables with -Z:\n%.200s", pl.Data)
	}
	for i, line := range strings.Split(string(pl.Data), "\n") {
		if strings.Contains(line, `"demo/sticky -> 10.244.3.11:8080"`) {
			name, ok := pl.ServiceAt(i + 1)
			if !ok || name != (types.NamespacedName{Namespace: "demo", Name: "sticky"}) {
				t.Errorf("line %d: ServiceAt = %v, %v; want demo/sticky", i+1, name, ok)
			}
			return
		}
	}
	t.Fatal("no rule for demo/sticky found")
}
