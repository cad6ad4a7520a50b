package netpol

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func ranges(t *testing.T, cidrs ...string) Ranges {
	t.Helper()
	var rs []Range
	for _, c := range cidrs {
		rs = append(rs, PrefixRange(netip.MustParsePrefix(c)))
	}
	return MergeRanges(rs)
}

func TestRanges(t *testing.T) {
	assert.Equal(t, "10.0.0.0/8", ranges(t, "10.1.2.3/8").String(), "host bits are cleared")
	assert.Equal(t, "0.0.0.0/0", ranges(t, "0.0.0.0/0", "10.0.0.0/8").String())
	assert.Equal(t, "10.0.0.0/23", ranges(t, "10.0.1.0/24", "10.0.0.0/24").String(), "adjacent ranges merge")
	assert.Equal(t, "10.0.0.1, 10.0.0.3", ranges(t, "10.0.0.3/32", "10.0.0.1/32").String())

	cut := ranges(t, "10.0.0.0/8").Subtract(ranges(t, "10.244.0.0/16", "10.0.0.0/32"))
	assert.Equal(t, "10.0.0.1-10.243.255.255, 10.245.0.0-10.255.255.255", cut.String())
	assert.True(t, cut.Contains(netip.MustParseAddr("10.0.0.1")))
	assert.True(t, cut.Contains(netip.MustParseAddr("10.255.255.255")))
	assert.False(t, cut.Contains(netip.MustParseAddr("10.0.0.0")))
	assert.False(t, cut.Contains(netip.MustParseAddr("10.244.3.4")))
	assert.False(t, cut.Contains(netip.MustParseAddr("11.0.0.0")))
	all := ranges(t, "0.0.0.0/0").Subtract(ranges(t, "255.255.255.255/32", "0.0.0.0/32"))
	assert.Equal(t, "0.0.0.1-255.255.255.254", all.String())
	assert.Empty(t, ranges(t, "10.0.0.0/24").Subtract(ranges(t, "10.0.0.0/8")))
}

func TestParseIPv4Prefix(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string
		ipv4    bool
		wantErr bool
	}{
		{in: "10.1.0.0/16", want: "10.1.0.0/16", ipv4: true},
		{in: "10.1.2.3/16", want: "10.1.0.0/16", ipv4: true},
		{in: "2001:db8::/64"},
		{in: "010.1.0.0/16", wantErr: true},
		{in: "10.1.0.0", wantErr: true},
		{in: "::ffff:10.1.0.0/112", wantErr: true},
		{in: "10.1.0.0/33", wantErr: true},
	} {
		p, ok, err := parseIPv4Prefix(tc.in)
		if tc.wantErr {
			assert.Error(t, err, tc.in)
			continue
		}
		assert.NoError(t, err, tc.in)
		assert.Equal(t, tc.ipv4, ok, tc.in)
		if ok {
			assert.Equal(t, tc.want, p.String(), tc.in)
		}
	}
}
