package ipam

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewRange(t *testing.T) {
	tests := []struct {
		name, subnet, gateway string
		wantGateway           string
		wantSize              int
		wantErr               string
	}{
		{name: "default gateway", subnet: "10.244.1.0/24", wantGateway: "10.244.1.1", wantSize: 253},
		{name: "explicit gateway", subnet: "10.244.1.0/24", gateway: "10.244.1.254", wantGateway: "10.244.1.254", wantSize: 253},
		{name: "smallest", subnet: "10.0.0.0/30", wantGateway: "10.0.0.1", wantSize: 1},
		{name: "too small", subnet: "10.0.0.0/31", wantErr: "subnet 10.0.0.0/31 too small: need at least a /30"},
		{name: "host bits", subnet: "10.244.1.7/24", wantErr: "subnet 10.244.1.7/24 is not a network address (did you mean 10.244.1.0/24?)"},
		{name: "ipv6", subnet: "fd00::/64", wantErr: "subnet fd00::/64: only IPv4 subnets are supported"},
		{name: "gateway outside", subnet: "10.244.1.0/24", gateway: "10.244.2.1", wantErr: "gateway 10.244.2.1 is not a usable address of subnet 10.244.1.0/24"},
		{name: "gateway is broadcast", subnet: "10.244.1.0/24", gateway: "10.244.1.255", wantErr: "gateway 10.244.1.255 is not a usable address of subnet 10.244.1.0/24"},
		{name: "gateway is network", subnet: "10.244.1.0/24", gateway: "10.244.1.0", wantErr: "gateway 10.244.1.0 is not a usable address of subnet 10.244.1.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gw netip.Addr
			if tt.gateway != "" {
				gw = netip.MustParseAddr(tt.gateway)
			}
			r, err := NewRange(netip.MustParsePrefix(tt.subnet), gw)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, netip.MustParseAddr(tt.wantGateway), r.Gateway)
			assert.Equal(t, tt.wantSize, r.Size())
		})
	}
}

func TestRangeContains(t *testing.T) {
	r := mustRange(t, "10.244.1.0/24")
	for addr, want := range map[string]bool{
		"10.244.1.0": false, "10.244.1.1": false, "10.244.1.2": true,
		"10.244.1.254": true, "10.244.1.255": false, "10.244.2.2": false,
	} {
		assert.Equal(t, want, r.Contains(netip.MustParseAddr(addr)), addr)
	}
	assert.Equal(t, netip.MustParsePrefix("10.244.1.1/24"), r.GatewayPrefix())
}

func mustRange(t *testing.T, subnet string) Range {
	t.Helper()
	r, err := NewRange(netip.MustParsePrefix(subnet), netip.Addr{})
	require.NoError(t, err)
	return r
}
