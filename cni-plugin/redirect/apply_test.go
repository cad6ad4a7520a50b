package redirect

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApplyMatchesGoldenAndIsIdempotent(t *testing.T) {
	for name, st := range planCases() {
		t.Run(name, func(t *testing.T) {
			p, err := PlanFor(st)
			require.NoError(t, err)
			f := newFake()
			require.NoError(t, Apply(f, p))
			once := f.save()
			assert.Equal(t, p.SaveText(), once, "the fake's iptables-save is the plan's")
			require.NoError(t, Apply(f, p))
			assert.Equal(t, once, f.save(), "applied twice = same result")
			missing, err := Missing(f)
			require.NoError(t, err)
			assert.Empty(t, missing)
		})
	}
}

// TestApplyOrder: chains exist and are filled before any jump points at
// them, and a jump already there is not added again.
func TestApplyOrder(t *testing.T) {
	p, err := PlanFor(defaultStatus())
	require.NoError(t, err)
	f := newFake()
	require.NoError(t, Apply(f, p))
	var want []string
	for _, c := range p.Chains {
		want = append(want, "clear "+c)
	}
	for _, r := range p.Rules {
		want = append(want, "append "+r.Chain)
	}
	want = append(want, "exists PREROUTING", "append PREROUTING", "exists OUTPUT", "append OUTPUT")
	assert.Equal(t, want, f.log)

	f.log = nil
	require.NoError(t, Apply(f, p))
	assert.Equal(t, []string{"exists PREROUTING", "exists OUTPUT"}, f.log[len(f.log)-2:], "jumps hooked once")
}

// TestRemoveUndoesPartialApply is the ADD rollback: whatever step failed,
// Remove leaves the table as it was, including foreign rules.
func TestRemoveUndoesPartialApply(t *testing.T) {
	p, err := PlanFor(defaultStatus())
	require.NoError(t, err)
	for _, failAt := range []string{"clear WEFT-OUTPUT", "append WEFT-OUTPUT", "append PREROUTING", "append OUTPUT"} {
		t.Run(failAt, func(t *testing.T) {
			f := newFake()
			f.chains["OUTPUT"] = []string{"-A OUTPUT -j ACCEPT"}
			clean := f.save()
			f.failWhen = func(c string) bool { return c == failAt }
			require.ErrorContains(t, Apply(f, p), "injected failure")
			f.failWhen = nil
			require.NoError(t, Remove(f))
			assert.Equal(t, clean, f.save())
			require.NoError(t, Remove(f), "remove is idempotent")
		})
	}
}

func TestMissing(t *testing.T) {
	p, err := PlanFor(defaultStatus())
	require.NoError(t, err)
	f := newFake()
	missing, err := Missing(f)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"chain WEFT-IN-REDIRECT", "chain WEFT-INBOUND", "chain WEFT-OUTPUT", "chain WEFT-REDIRECT",
		"jump PREROUTING -> WEFT-INBOUND", "jump OUTPUT -> WEFT-OUTPUT",
	}, missing)

	require.NoError(t, Apply(f, p))
	f.chains["OUTPUT"] = nil // someone flushed OUTPUT
	missing, err = Missing(f)
	require.NoError(t, err)
	assert.Equal(t, []string{"jump OUTPUT -> WEFT-OUTPUT"}, missing)

	// A jump of another Weft version (another comment) still counts.
	f.chains["OUTPUT"] = []string{`-A OUTPUT -p tcp -m comment --comment "weft: old" -j WEFT-OUTPUT`}
	missing, err = Missing(f)
	require.NoError(t, err)
	assert.Empty(t, missing)
	require.NoError(t, Remove(f))
	assert.False(t, strings.Contains(f.save(), "WEFT"), f.save())
}
