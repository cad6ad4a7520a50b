package netpol

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/cni-plugin/internal/nstest"
)

// kernelNS is a throwaway netns with an NFT working in it.
func kernelNS(t testing.TB) (*nstest.NS, *NFT) {
	t.Helper()
	n := nstest.NewT(t, "np")
	return n, &NFT{NetNS: int(n.Fd())}
}

// listTable is `nft list table` in n with its blocks (chains, sets,
// counters) sorted, as the kernel lists them in creation order, and
// counters zeroed, so tables that saw different traffic compare.
func listTable(t testing.TB, n *nstest.NS) string {
	t.Helper()
	out, err := n.Run("nft", "list", "table", "inet", TableName)
	require.NoError(t, err)
	out = regexp.MustCompile(`packets \d+ bytes \d+`).ReplaceAllString(out, "packets 0 bytes 0")
	var blocks []string
	for _, b := range strings.Split(out, "\n\n") {
		blocks = append(blocks, strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(b), "table inet "+TableName+" {\n"), "\n}"))
	}
	slices.Sort(blocks)
	return strings.Join(blocks, "\n\n")
}

func requireNft(t testing.TB) {
	t.Helper()
	nstest.RequireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft command to list tables")
	}
}

// sync is one full or partial sync as the controller does it.
func syncTo(t testing.TB, k *NFT, want, have *Ruleset) *Change {
	t.Helper()
	var c *Change
	if have == nil {
		ex, err := k.Existing()
		require.NoError(t, err)
		c = FullChange(want, ex)
	} else {
		c = PartialChange(want, have)
	}
	require.NoError(t, k.Apply(c))
	return c
}

// TestNetlinkEncodingMatchesNft writes the same change through netlink and
// through `nft -f` (its String form) and compares what nft lists: the
// expressions, set keys and intervals are encoded as nft encodes them.
func TestNetlinkEncodingMatchesNft(t *testing.T) {
	requireNft(t)
	n, k := kernelNS(t)
	ref := nstest.NewT(t, "npref")
	s := representativeState(t)
	want := Plan(s)
	check := func(c *Change) {
		t.Helper()
		require.NoError(t, k.Apply(c))
		cmd := exec.Command("ip", "netns", "exec", ref.Name, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(c.String())
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "nft -f:\n%s\n%s", out, c)
		assert.Equal(t, listTable(t, ref), listTable(t, n))
	}
	check(FullChange(want, Existing{}))
	for _, step := range partialSteps(t) {
		step.apply(&s)
		next := Plan(s)
		check(PartialChange(next, want))
		want = next
	}
}

// TestResyncIsIdempotent: a second full sync leaves the table as it was
// (and keeps the drop counters), a partial sync of the same state writes
// nothing, and a sequence of partial syncs ends where one full sync of the
// final state does.
func TestResyncIsIdempotent(t *testing.T) {
	requireNft(t)
	n, k := kernelNS(t)
	s := representativeState(t)
	want := Plan(s)
	syncTo(t, k, want, nil)
	first := listTable(t, n)
	ex, err := k.Existing()
	require.NoError(t, err)
	assert.Len(t, ex.Chains, len(want.Chains))
	assert.Len(t, ex.Sets, len(want.Sets))
	assert.Equal(t, want.Counters, ex.Counters)

	syncTo(t, k, want, nil)
	assert.Equal(t, first, listTable(t, n), "a second full sync changes nothing")
	assert.True(t, syncTo(t, k, want, want).Empty())
	intact, err := k.Intact()
	require.NoError(t, err)
	assert.True(t, intact)

	have := want
	for _, step := range partialSteps(t) {
		step.apply(&s)
		next := Plan(s)
		syncTo(t, k, next, have)
		have = next
	}
	fresh, fk := kernelNS(t)
	syncTo(t, fk, have, nil)
	assert.Equal(t, listTable(t, fresh), listTable(t, n), "partial syncs end where a full sync does")
	syncTo(t, k, have, nil)
	assert.Equal(t, listTable(t, fresh), listTable(t, n))
}

// TestTamperedTableIsRewritten: someone flushing the table is noticed by
// Intact and repaired by the full sync that follows.
func TestTamperedTableIsRewritten(t *testing.T) {
	requireNft(t)
	n, k := kernelNS(t)
	want := Plan(representativeState(t))
	syncTo(t, k, want, nil)
	before := listTable(t, n)
	_, err := n.Run("nft", "flush", "table", "inet", TableName)
	require.NoError(t, err)
	intact, err := k.Intact()
	require.NoError(t, err)
	assert.False(t, intact)
	syncTo(t, k, want, nil)
	assert.Equal(t, before, listTable(t, n))

	_, err = n.Run("nft", "delete", "table", "inet", TableName)
	require.NoError(t, err)
	intact, err = k.Intact()
	require.NoError(t, err)
	assert.False(t, intact)
	syncTo(t, k, want, nil)
	assert.Equal(t, before, listTable(t, n))

	require.NoError(t, k.Delete())
	require.NoError(t, k.Delete(), "deleting a missing table is fine")
	out, err := n.Run("nft", "list", "ruleset")
	require.NoError(t, err)
	assert.Empty(t, strings.TrimSpace(out))
}

// TestLargeSetsAreChunked: sets larger than one netlink message (an
// element list is one 16-bit-length attribute) are written in chunks of
// the same transaction.
func TestLargeSetsAreChunked(t *testing.T) {
	requireNft(t)
	_, k := kernelNS(t)
	s := State{Node: node, Namespaces: []Namespace{namespace("big", nil)}}
	for i := range 1500 {
		// Every other address, so the ranges do not merge: 3000 interval
		// elements in one set.
		ip := fmt.Sprintf("10.%d.%d.%d", 100+i/32000, (i*2/250)%250, 2+(i*2)%250)
		s.Pods = append(s.Pods, pod("big", fmt.Sprintf("p-%d", i), ip, "n2", map[string]string{"app": "peer"},
			named("http", TCP, 8080)))
	}
	for i := range 600 {
		s.Pods = append(s.Pods, pod("big", fmt.Sprintf("l-%d", i), fmt.Sprintf("10.244.%d.%d", 1+i/200, 2+i%200), node,
			map[string]string{"app": "local"}))
	}
	s.Policies = compileAll(t, policy("big", "p", sel("app", "local"), both,
		ingress(nil, podPeer(sel("app", "peer"))), egress(ports(namedPort(corev1.ProtocolTCP, "http")), podPeer(sel("app", "peer")))))
	want := Plan(s)
	c := syncTo(t, k, want, nil)
	assert.Greater(t, c.Elements, 3*elemsPerMessage)
	conn, err := nftables.New(nftables.WithNetNSFd(k.NetNS))
	require.NoError(t, err)
	big := 0
	for _, set := range want.Sets {
		if set.Len() <= elemsPerMessage {
			continue
		}
		big++
		ks, err := conn.GetSetByName(k.table(), set.Name)
		require.NoError(t, err)
		els, err := conn.GetSetElements(ks)
		require.NoError(t, err)
		starts := 0
		for _, e := range els {
			if !e.IntervalEnd {
				starts++
			}
		}
		assert.Equal(t, set.Len(), starts, set.Name)
	}
	assert.Equal(t, 5, big, "both peer sets, the named-port set and both maps are larger than one message")
	assert.True(t, syncTo(t, k, want, want).Empty())
}

// TestCleanup removes the table of the caller's network namespace, and is
// a no-op when there is none.
func TestCleanup(t *testing.T) {
	requireNft(t)
	n, k := kernelNS(t)
	syncTo(t, k, Plan(representativeState(t)), nil)
	for range 2 {
		require.NoError(t, n.Do(func(ns.NetNS) error { return Cleanup(context.Background()) }))
		out, err := n.Run("nft", "list", "tables")
		require.NoError(t, err)
		assert.NotContains(t, out, TableName)
	}
}
