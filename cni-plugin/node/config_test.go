package node

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, testConfig(t).Validate())

	bad := Config{CNIBinDir: "rel", CNIConfDir: "/c", SourceBinDir: "/s", IPAMDataDir: "/i", CNIVersion: "0.4.0",
		ClusterCIDR: netip.MustParsePrefix("fd00::/48"), Bridge: "a-very-long-bridge", MTU: 100}
	assert.EqualError(t, bad.Validate(), `node name is empty (set --node-name or NODE_NAME)
--cni-bin-dir "rel" is not an absolute path
--cni-version "0.4.0": weft-bridge speaks 1.0.0 and 1.1.0
--cluster-cidr "fd00::/48" is not an IPv4 CIDR
--bridge "a-very-long-bridge" must be 1-15 characters
--mtu 100 out of range 576-65535
--resync-period 0s is shorter than 1s`)
}
