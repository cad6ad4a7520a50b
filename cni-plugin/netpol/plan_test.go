package netpol

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

func TestPlanGolden(t *testing.T) {
	rs := Plan(representativeState(t))
	golden(t, "full.golden", rs.String())
	assert.Equal(t, []string{"db/pg", "ops/deny-all", "shop/allow-web", "shop/api-egress", "shop/bad-input", "shop/default-deny"}, rs.Policies)
	assert.Equal(t, 4, rs.Isolated)

	// The plan depends on the state, not on the order informers list it.
	s := representativeState(t)
	r := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		r.Shuffle(len(s.Pods), func(i, j int) { s.Pods[i], s.Pods[j] = s.Pods[j], s.Pods[i] })
		r.Shuffle(len(s.Policies), func(i, j int) { s.Policies[i], s.Policies[j] = s.Policies[j], s.Policies[i] })
		r.Shuffle(len(s.Namespaces), func(i, j int) { s.Namespaces[i], s.Namespaces[j] = s.Namespaces[j], s.Namespaces[i] })
		assert.Equal(t, rs.String(), Plan(s).String())
	}
}

func TestFullChangeGolden(t *testing.T) {
	want := Plan(representativeState(t))
	golden(t, "full-sync.golden", FullChange(want, Existing{}).String())

	// Over an existing table: everything is flushed and deleted first,
	// counters are kept, a stale one goes.
	have := Existing{Table: true,
		Chains:   []ExistingChain{{Name: ChainIngress, Base: true}, {Name: "pod-in-gone"}},
		Sets:     []*Set{{Name: MapIngress, Type: VerdictMap}, {Name: "peers-in-gone-0", Type: AddrSet}},
		Counters: []string{"drop-ingress-shop", "drop-ingress-gone"}}
	c := FullChange(want, have).String()
	head := strings.Join(strings.Split(c, "\n")[:9], "\n")
	assert.Equal(t, `add table inet weft-netpol
flush chain inet weft-netpol ingress
flush chain inet weft-netpol pod-in-gone
delete map inet weft-netpol ingress-pods
delete set inet weft-netpol peers-in-gone-0
delete chain inet weft-netpol pod-in-gone
add counter inet weft-netpol drop-egress-db
add counter inet weft-netpol drop-egress-shop
add counter inet weft-netpol drop-ingress-db`, head)
	assert.Contains(t, c, "delete counter inet weft-netpol drop-ingress-gone\n")
}

// change is one step of the partial sync sequence.
type change struct {
	name  string
	apply func(*State)
}

// partialSteps change pods, labels and policies one at a time.
func partialSteps(t testing.TB) []change {
	return []change{
		{"new-pod", func(s *State) {
			s.Pods = append(s.Pods, pod("shop", "web-3", "10.244.1.12", node, map[string]string{"app": "web"}, named("http", TCP, 8080)))
		}},
		{"policy-update", func(s *State) {
			replacePolicy(t, s, policy("shop", "allow-web", sel("app", "web"),
				ingress(ports(namedPort(corev1.ProtocolTCP, "http"), tcp(9091)), podPeer(sel("app", "api")))))
		}},
		{"relabel", func(s *State) {
			for i := range s.Pods {
				if s.Pods[i].Name == "api-1" {
					s.Pods[i].Labels = map[string]string{"app": "batch"}
				}
			}
		}},
		{"policy-delete", func(s *State) { deletePolicy(s, "shop/default-deny") }},
		{"address-reuse", func(s *State) {
			for i := range s.Pods {
				if s.Pods[i].Name == "pg-1" {
					s.Pods[i] = pod("db", "pg-3", "10.244.1.20", node, map[string]string{"app": "pg"})
				}
			}
		}},
		{"namespace-empties", func(s *State) { deletePolicy(s, "ops/deny-all") }},
	}
}

func replacePolicy(t testing.TB, s *State, np *networkingv1.NetworkPolicy) {
	deletePolicy(s, np.Namespace+"/"+np.Name)
	s.Policies = append(s.Policies, compileAll(t, np)...)
}

func deletePolicy(s *State, key string) {
	var keep []*Policy
	for _, p := range s.Policies {
		if p.Key() != key {
			keep = append(keep, p)
		}
	}
	s.Policies = keep
}

func TestPartialChangeGolden(t *testing.T) {
	s := representativeState(t)
	have := Plan(s)
	require.True(t, PartialChange(have, have).Empty(), "a second sync of the same state writes nothing")
	for _, step := range partialSteps(t) {
		step.apply(&s)
		want := Plan(s)
		c := PartialChange(want, have)
		golden(t, "partial-"+step.name+".golden", c.String())
		require.True(t, PartialChange(want, want).Empty())
		have = want
	}
}

func TestPartialChangeOnlyTouchesElementsForPodChurn(t *testing.T) {
	s := representativeState(t)
	have := Plan(s)
	// A pod on another node joins a peer selection: only set elements.
	s.Pods = append(s.Pods, pod("shop", "api-2", "10.244.2.11", "n2", map[string]string{"app": "api"}))
	c := PartialChange(Plan(s), have)
	for _, op := range c.Ops {
		assert.Contains(t, []OpKind{OpFlushSet, OpAddElements}, op.Kind, c.String())
	}
	assert.Zero(t, c.Rules)
	assert.Contains(t, c.String(), "10.244.2.11")
}
