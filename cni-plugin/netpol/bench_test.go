package netpol

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The benchmark cluster: 100 policies over 500 pods in 50 namespaces, all
// pods on the node under test (see scaledState).
const benchPods, benchPolicies = 500, 100

// BenchmarkPlan is the pure part of a sync: resolve selectors, build the
// ruleset, and diff it for a full write.
func BenchmarkPlan(b *testing.B) {
	s := scaledState(b, benchPods, benchPolicies)
	var c *Change
	for b.Loop() {
		c = FullChange(Plan(s), Existing{})
	}
	b.ReportMetric(float64(c.Rules), "rules")
	b.ReportMetric(float64(c.Elements), "elements")
}

// BenchmarkPartialPlan plans after one policy changed.
func BenchmarkPartialPlan(b *testing.B) {
	s := scaledState(b, benchPods, benchPolicies)
	have := Plan(s)
	changePolicy(b, &s)
	for b.Loop() {
		PartialChange(Plan(s), have)
	}
}

// changePolicy changes the ports of one allow policy.
func changePolicy(tb testing.TB, s *State) {
	np := policy("ns-0", "allow-1", sel("app", "app-1"), both,
		ingress(ports(port(corev1.ProtocolTCP, intstr.FromInt32(8443))), podPeer(sel("tier", "2"))))
	replacePolicy(tb, s, np)
}

// BenchmarkSync writes to the kernel in a network namespace: the initial
// sync into an empty node, a partial sync after one policy changed, and
// a full resync over the existing table. Each is timed end to end (plan,
// read of the table for full syncs, one nftables transaction).
func BenchmarkSync(b *testing.B) {
	_, k := kernelNS(b)
	var initial, partial, resync time.Duration
	var rules, elements int
	for b.Loop() {
		s := scaledState(b, benchPods, benchPolicies)
		require.NoError(b, k.Delete())

		start := time.Now()
		want := Plan(s)
		ex, err := k.Existing()
		require.NoError(b, err)
		c := FullChange(want, ex)
		require.NoError(b, k.Apply(c))
		initial += time.Since(start)
		rules, elements = c.Rules, c.Elements

		changePolicy(b, &s)
		start = time.Now()
		next := Plan(s)
		require.NoError(b, k.Apply(PartialChange(next, want)))
		partial += time.Since(start)

		start = time.Now()
		next = Plan(s)
		ex, err = k.Existing()
		require.NoError(b, err)
		require.NoError(b, k.Apply(FullChange(next, ex)))
		resync += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(initial.Seconds()*1000/n, "ms/initial-sync")
	b.ReportMetric(partial.Seconds()*1000/n, "ms/policy-change")
	b.ReportMetric(resync.Seconds()*1000/n, "ms/full-resync")
	b.ReportMetric(float64(rules), "rules")
	b.ReportMetric(float64(elements), "elements")
}
