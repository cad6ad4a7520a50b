package rules_test

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
)

var benchSizes = []int{1000, 5000, 10000}

// BenchmarkFullSyncPlan measures planning + rendering the complete restore
// input for N Services with 2–5 endpoints each.
func BenchmarkFullSyncPlan(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			c := scale(n).Tracker().Take()
			p := newPlanner()
			var bytes, rulesWritten int
			for b.Loop() {
				pl := p.Plan(input(c, true, nil))
				bytes, rulesWritten = len(pl.Data), pl.RulesWritten
			}
			b.ReportMetric(float64(rulesWritten), "rules")
			b.ReportMetric(float64(bytes), "restore-bytes")
		})
	}
}

// BenchmarkPartialSyncPlan measures a sync after one endpoint of one Service
// changed: tracker conversion, re-rendering that Service and assembling the
// restore input, then committing it.
func BenchmarkPartialSyncPlan(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			w := scale(n)
			tr := w.Tracker()
			p := newPlanner()
			p.Commit(p.Plan(input(tr.Take(), true, nil)))
			var bytes, rulesWritten, i int
			for b.Loop() {
				s := w.Slices[i%len(w.Slices)]
				i++
				eps := []ep{ep(fmt.Sprintf("10.250.%d.%d", i/250%250, i%250+1)), "10.250.255.1"}
				tr.SetSlice(makeSlice(s.Namespace, s.Labels["kubernetes.io/service-name"], "http", 8080, v1.ProtocolTCP, eps...))
				pl := p.Plan(input(tr.Take(), false, nil))
				if pl.Full {
					b.Fatal("planned a full sync")
				}
				p.Commit(pl)
				bytes, rulesWritten = len(pl.Data), pl.RulesWritten
			}
			b.ReportMetric(float64(rulesWritten), "rules")
			b.ReportMetric(float64(bytes), "restore-bytes")
		})
	}
}
