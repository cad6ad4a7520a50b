package main

import (
	"net/netip"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseConfigDefaults(t *testing.T) {
	c, err := parseConfig([]byte(`{"cniVersion":"1.0.0","name":"weft","type":"weft-bridge","bridge":"weft0","podCIDR":"10.244.1.0/24"}`))
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("10.244.1.1"), c.rng.Gateway)
	assert.Equal(t, 1500, c.MTU)
	assert.True(t, c.hairpin)
	assert.Equal(t, "/var/lib/cni/weft", c.DataDir)

	c, err = parseConfig([]byte(`{"cniVersion":"1.0.0","name":"weft","type":"weft-bridge","bridge":"weft0","podCIDR":"10.244.1.0/24",
		"gateway":"10.244.1.254","mtu":1450,"hairpinMode":false,"dataDir":"/tmp/x"}`))
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("10.244.1.254"), c.rng.Gateway)
	assert.Equal(t, 1450, c.MTU)
	assert.False(t, c.hairpin)
	assert.Equal(t, "/tmp/x", c.DataDir)
}

func TestParseConfigErrors(t *testing.T) {
	const base = `"cniVersion":"1.0.0","name":"weft","type":"weft-bridge"`
	tests := map[string]struct{ conf, want string }{
		"not json":          {`{`, "decode weft-bridge config"},
		"no bridge":         {`{` + base + `,"podCIDR":"10.244.1.0/24"}`, `invalid weft-bridge config: "bridge" is required`},
		"long bridge":       {`{` + base + `,"bridge":"a-very-long-bridge-name","podCIDR":"10.244.1.0/24"}`, `invalid weft-bridge config: bridge "a-very-long-bridge-name": interface name is too long`},
		"no podCIDR":        {`{` + base + `,"bridge":"weft0"}`, `invalid weft-bridge config: "podCIDR" is required`},
		"bad podCIDR":       {`{` + base + `,"bridge":"weft0","podCIDR":"10.244.1.0/33"}`, `invalid weft-bridge config: podCIDR "10.244.1.0/33" is not a CIDR`},
		"podCIDR host bits": {`{` + base + `,"bridge":"weft0","podCIDR":"10.244.1.9/24"}`, `invalid weft-bridge config: subnet 10.244.1.9/24 is not a network address (did you mean 10.244.1.0/24?)`},
		"bad gateway":       {`{` + base + `,"bridge":"weft0","podCIDR":"10.244.1.0/24","gateway":"10.9.9.9"}`, `invalid weft-bridge config: gateway 10.9.9.9 is not a usable address of subnet 10.244.1.0/24`},
		"bad mtu":           {`{` + base + `,"bridge":"weft0","podCIDR":"10.244.1.0/24","mtu":70000}`, `invalid weft-bridge config: mtu 70000 out of range 576-65535`},
		"relative dataDir":  {`{` + base + `,"bridge":"weft0","podCIDR":"10.244.1.0/24","dataDir":"x"}`, `invalid weft-bridge config: dataDir "x" is not an absolute path`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.conf))
			var cniErr *types.Error
			require.ErrorAs(t, err, &cniErr)
			assert.Equal(t, tt.want, cniErr.Msg)
		})
	}
}
