package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func att(id string) Attachment {
	return Attachment{ContainerID: id, IfName: "eth0", Netns: "/var/run/netns/" + id}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestAllocateSkipsReservedAndRoundRobins(t *testing.T) {
	r := mustRange(t, "10.0.0.0/29") // .1 gateway, .2-.6 usable, .7 broadcast
	var st State
	var got []string
	for i := range 5 {
		ip, fresh, err := st.Allocate(r, att(fmt.Sprint("c", i)))
		require.NoError(t, err)
		require.True(t, fresh)
		got = append(got, ip.String())
	}
	assert.Equal(t, []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}, got)

	// Release .3: the next allocation wraps around from the last one (.6)
	// and finds .3, rather than reusing the most recent release first.
	assert.Equal(t, []netip.Addr{addr("10.0.0.3")}, st.Release("c1", "eth0"))
	ip, _, err := st.Allocate(r, att("c5"))
	require.NoError(t, err)
	assert.Equal(t, addr("10.0.0.3"), ip)
}

func TestAllocateRoundRobinAvoidsImmediateReuse(t *testing.T) {
	r := mustRange(t, "10.244.1.0/24")
	var st State
	first, _, err := st.Allocate(r, att("a"))
	require.NoError(t, err)
	st.Release("a", "eth0")
	second, _, err := st.Allocate(r, att("b"))
	require.NoError(t, err)
	assert.Equal(t, addr("10.244.1.2"), first)
	assert.Equal(t, addr("10.244.1.3"), second, "a just-released address is not reused at once")
}

func TestAllocateCustomGatewayIsSkipped(t *testing.T) {
	r, err := NewRange(netip.MustParsePrefix("10.0.0.0/30"), addr("10.0.0.2"))
	require.NoError(t, err)
	var st State
	ip, _, err := st.Allocate(r, att("a"))
	require.NoError(t, err)
	assert.Equal(t, addr("10.0.0.1"), ip)
	_, _, err = st.Allocate(r, att("b"))
	require.EqualError(t, err, "range 10.0.0.0/30 exhausted")
}

func TestAllocateExhausted(t *testing.T) {
	r := mustRange(t, "10.244.1.0/24")
	var st State
	for i := range r.Size() {
		_, _, err := st.Allocate(r, att(fmt.Sprint("c", i)))
		require.NoError(t, err)
	}
	assert.Equal(t, 0, st.Free(r))
	_, _, err := st.Allocate(r, att("one-too-many"))
	require.EqualError(t, err, "range 10.244.1.0/24 exhausted")
	assert.True(t, errors.Is(err, ErrExhausted))
}

func TestAllocateSameAttachmentTwice(t *testing.T) {
	r := mustRange(t, "10.244.1.0/24")
	var st State
	ip1, fresh1, err := st.Allocate(r, att("a"))
	require.NoError(t, err)
	ip2, fresh2, err := st.Allocate(r, att("a"))
	require.NoError(t, err)
	assert.Equal(t, ip1, ip2)
	assert.True(t, fresh1)
	assert.False(t, fresh2, "a retried ADD must not release what the first one took")
	assert.Len(t, st.Allocations, 1)
}

func TestAllocateMovesAttachmentOffOldSubnet(t *testing.T) {
	st := State{Allocations: map[netip.Addr]Attachment{addr("10.244.9.5"): att("a")}}
	ip, fresh, err := st.Allocate(mustRange(t, "10.244.1.0/24"), att("a"))
	require.NoError(t, err)
	assert.True(t, fresh)
	assert.Equal(t, addr("10.244.1.2"), ip)
	assert.Len(t, st.Allocations, 1)
}

func TestReleaseIsIdempotentAndKeyedByIfName(t *testing.T) {
	r := mustRange(t, "10.244.1.0/24")
	var st State
	_, _, err := st.Allocate(r, Attachment{ContainerID: "a", IfName: "eth0"})
	require.NoError(t, err)
	_, _, err = st.Allocate(r, Attachment{ContainerID: "a", IfName: "net1"})
	require.NoError(t, err)

	assert.Equal(t, []netip.Addr{addr("10.244.1.2")}, st.Release("a", "eth0"))
	assert.Empty(t, st.Release("a", "eth0"))
	assert.Empty(t, st.Release("unknown", "eth0"))
	got, ok := st.Lookup("a", "net1")
	assert.True(t, ok)
	assert.Equal(t, addr("10.244.1.3"), got)
}

func TestRetain(t *testing.T) {
	st := State{Allocations: map[netip.Addr]Attachment{
		addr("10.0.0.4"): att("keep"), addr("10.0.0.3"): att("drop1"), addr("10.0.0.2"): att("drop2"),
	}}
	freed := st.Retain(func(_ netip.Addr, a Attachment) bool { return a.ContainerID == "keep" })
	assert.Equal(t, []netip.Addr{addr("10.0.0.2"), addr("10.0.0.3")}, freed)
	if diff := cmp.Diff(map[netip.Addr]Attachment{addr("10.0.0.4"): att("keep")}, st.Allocations, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("allocations (-want +got):\n%s", diff)
	}
}
