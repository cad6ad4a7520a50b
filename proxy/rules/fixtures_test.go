package rules_test

import (
	"testing"

	"github.com/weftmesh/weft/proxy/internal/fixtures"
	"github.com/weftmesh/weft/proxy/model"
	"github.com/weftmesh/weft/proxy/rules"
)

var (
	testNodeIPs  = fixtures.NodeIPs
	makeSvc      = fixtures.Service
	makeSlice    = fixtures.Slice
	tcp          = fixtures.TCP
	withAffinity = fixtures.WithAffinity
)

type ep = fixtures.EP

func representative() fixtures.World { return fixtures.Representative() }

func scale(n int) fixtures.World { return fixtures.Scale("bench", n) }

func newPlanner() *rules.Planner {
	return rules.NewPlanner(rules.Config{ClusterCIDR: fixtures.ClusterCIDR, BulkRules: 1000})
}

func input(c model.Changes, full bool, existing *rules.Existing) rules.Input {
	return rules.Input{Services: c.Services, Changed: c.Changed, Full: full, NodeIPs: testNodeIPs, Existing: existing}
}

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
