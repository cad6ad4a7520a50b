package node

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func baseConflist() ConflistConfig {
	return ConflistConfig{
		CNIVersion: "1.0.0", Bridge: "weft0", PodCIDR: netip.MustParsePrefix("10.244.1.0/24"),
		MTU: 1500, DataDir: "/var/lib/cni/weft",
	}
}

func TestBuildConflistGolden(t *testing.T) {
	got, err := BuildConflist(baseConflist())
	require.NoError(t, err)
	golden(t, "10-weft.conflist", got)

	// A runtime can read it and sees one weft-bridge plugin. This libcni
	// (1.3) negotiates 1.1.0 from cniVersions; containerd 1.6's libcni
	// ignores that key and uses cniVersion 1.0.0.
	list, err := libcni.ConfListFromBytes(got)
	require.NoError(t, err)
	assert.Equal(t, "weft", list.Name)
	assert.Equal(t, "1.1.0", list.CNIVersion)
	require.Len(t, list.Plugins, 1)
	assert.Equal(t, "weft-bridge", list.Plugins[0].Network.Type)
}

func TestBuildConflistChained(t *testing.T) {
	c := baseConflist()
	c.CNIVersion = "1.1.0"
	c.Chained = []json.RawMessage{json.RawMessage(`{"type":"weft-redirect","inboundPort":15006}`)}
	got, err := BuildConflist(c)
	require.NoError(t, err)
	golden(t, "10-weft-chained.conflist", got)
	list, err := libcni.ConfListFromBytes(got)
	require.NoError(t, err)
	require.Len(t, list.Plugins, 2)
	assert.Equal(t, "weft-redirect", list.Plugins[1].Network.Type)

	c.Chained = []json.RawMessage{json.RawMessage(`{"inboundPort":15006}`)}
	_, err = BuildConflist(c)
	require.EqualError(t, err, `chained plugin 0 has no "type": {"inboundPort":15006}`)
}
