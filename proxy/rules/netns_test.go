package rules_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/proxy/internal/netns"
	"github.com/weftmesh/weft/proxy/iptables"
	"github.com/weftmesh/weft/proxy/rules"
)

// kernelIn returns an iptables edge bound to a fresh network namespace that
// is removed when the test ends, pass or fail.
func kernelIn(tb testing.TB) iptables.Exec {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create a network namespace")
	}
	ctx := context.Background()
	name, err := netns.Create(ctx, "rules")
	if name != "" {
		tb.Cleanup(func() {
			if err := netns.Delete(context.Background(), name); err != nil {
				tb.Error(err)
			}
		})
	}
	mustNoErr(tb, err)
	return iptables.Exec{Wrapper: netns.Exec(name)}
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// normalize makes iptables-save output comparable: no header comments or
// counters, chain declarations sorted, rules grouped by chain in order.
func normalize(save []byte) string {
	var out []string
	var decls []string
	byChain := map[string][]string{}
	var order []string
	flush := func() {
		slices.Sort(decls)
		out = append(out, decls...)
		for _, c := range order {
			out = append(out, byChain[c]...)
		}
		decls, byChain, order = nil, map[string][]string{}, nil
	}
	for _, line := range strings.Split(string(save), "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			out = append(out, line)
		case strings.HasPrefix(line, ":"):
			decls = append(decls, counters.ReplaceAllString(line, "[0:0]"))
		case line == "COMMIT":
			flush()
			out = append(out, line)
		default:
			chain := strings.Fields(line)[1]
			if _, ok := byChain[chain]; !ok {
				order = append(order, chain)
			}
			byChain[chain] = append(byChain[chain], line)
		}
	}
	slices.Sort(order)
	return strings.Join(out, "\n")
}

func save(t *testing.T, k iptables.Interface) []byte {
	t.Helper()
	out, err := k.Save(context.Background())
	mustNoErr(t, err)
	return out
}

// TestRealRestoreIsIdempotentAndCleansUp applies the representative state to
// a real kernel twice (the second time as a periodic full resync would, with
// hooks already present), then a partial sync, and checks each step against
// what a fresh full sync produces; finally --cleanup's input must leave the
// namespace as it found it.
func TestRealRestoreIsIdempotentAndCleansUp(t *testing.T) {
	ctx := context.Background()
	k := kernelIn(t)

	tr := representative().Tracker()
	p := newPlanner()
	first := p.Plan(input(tr.Take(), true, rules.ParseSave(save(t, k))))
	mustNoErr(t, k.Restore(ctx, first.Data))
	p.Commit(first)
	once := normalize(save(t, k))

	second := p.Plan(input(tr.Take(), true, rules.ParseSave(save(t, k))))
	mustNoErr(t, k.Restore(ctx, second.Data))
	p.Commit(second)
	if diff := cmp.Diff(once, normalize(save(t, k))); diff != "" {
		t.Errorf("second full sync changed the kernel (-first +second):\n%s", diff)
	}

	tr.SetSlice(makeSlice("demo", "web", "http", 8080, v1.ProtocolTCP, "10.244.1.2@local", "10.244.2.3"))
	tr.SetSlice(makeSlice("demo", "empty", "", 80, v1.ProtocolTCP, "10.244.2.30"))
	partial := p.Plan(input(tr.Take(), false, nil))
	mustNoErr(t, k.Restore(ctx, partial.Data))
	p.Commit(partial)

	fresh := kernelIn(t)
	mustNoErr(t, fresh.Restore(ctx, newPlanner().Plan(input(tr.Take(), true, nil)).Data))
	if diff := cmp.Diff(normalize(save(t, fresh)), normalize(save(t, k))); diff != "" {
		t.Errorf("partial sync differs from a full sync in the kernel (-full +partial):\n%s", diff)
	}

	mustNoErr(t, k.Restore(ctx, rules.Cleanup(rules.ParseSave(save(t, k)))))
	// The nf_tables backend keeps the (now empty) tables weft created.
	if after := normalize(save(t, k)); strings.Contains(after, "WEFT") || strings.Contains(after, "-A ") {
		t.Errorf("cleanup left state behind:\n%s", after)
	}
}

// TestRealRestoreFailureLeavesTableUntouched checks the atomicity weft relies
// on: a restore whose nat section fails changes nothing in nat.
func TestRealRestoreFailureLeavesTableUntouched(t *testing.T) {
	ctx := context.Background()
	k := kernelIn(t)
	pl := newPlanner().Plan(input(representative().Tracker().Take(), true, nil))
	mustNoErr(t, k.Restore(ctx, pl.Data))
	before := normalize(save(t, k))

	bad := []byte("*nat\n:WEFT-SERVICES - [0:0]\n-A WEFT-SERVICES -m comment --comment x -j WEFT-SVC-DOESNOTEXIST0000\nCOMMIT\n")
	err := k.Restore(ctx, bad)
	var re *iptables.RestoreError
	if !errors.As(err, &re) || re.Line == 0 {
		t.Fatalf("restore of a jump to a missing chain: err = %v, want a RestoreError with a line", err)
	}
	if diff := cmp.Diff(before, normalize(save(t, k))); diff != "" {
		t.Errorf("failed restore changed the kernel:\n%s", diff)
	}
	if !iptables.SupportsSCTP(ctx, k) {
		t.Log("kernel has no SCTP match: SCTP Services would be skipped")
	}
	if after := normalize(save(t, k)); after != before {
		t.Error("SCTP probe left rules behind")
	}
}

// BenchmarkRealRestore applies the full state of N Services to a real
// kernel (first sync into an empty namespace, then a full resync over it)
// and a one-endpoint partial sync, reporting rule counts.
func BenchmarkRealRestore(b *testing.B) {
	ctx := context.Background()
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			w := scale(n)
			tr := w.Tracker()
			c := tr.Take()
			full := newPlanner().Plan(input(c, true, nil))
			b.Run("first-full", func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					k := kernelIn(b)
					b.StartTimer()
					mustNoErr(b, k.Restore(ctx, full.Data))
				}
				b.ReportMetric(float64(full.Totals.NATRules+full.Totals.FilterRules), "rules")
			})
			k := kernelIn(b)
			mustNoErr(b, k.Restore(ctx, full.Data))
			p := newPlanner()
			b.Run("resync-full", func(b *testing.B) {
				for b.Loop() {
					out, err := k.Save(ctx)
					mustNoErr(b, err)
					pl := p.Plan(input(c, true, rules.ParseSave(out)))
					mustNoErr(b, k.Restore(ctx, pl.Data))
					p.Commit(pl)
				}
			})
			b.Run("partial-one-endpoint", func(b *testing.B) {
				i := 0
				for b.Loop() {
					s := w.Slices[i%len(w.Slices)]
					i++
					tr.SetSlice(makeSlice(s.Namespace, s.Labels["kubernetes.io/service-name"], "http", 8080, v1.ProtocolTCP, ep(fmt.Sprintf("10.250.%d.%d", i/250%250, i%250+1)), "10.250.255.1"))
					pl := p.Plan(input(tr.Take(), false, nil))
					mustNoErr(b, k.Restore(ctx, pl.Data))
					p.Commit(pl)
				}
			})
		})
	}
}
