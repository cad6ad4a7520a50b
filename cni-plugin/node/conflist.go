package node

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// ConflistConfig is everything the node's CNI network configuration says.
type ConflistConfig struct {
	CNIVersion string
	Bridge     string
	PodCIDR    netip.Prefix
	MTU        int
	DataDir    string
	// Chained plugin entries run after weft-bridge, in order (CNI SPEC,
	// section 3 "Adding an attachment"); weft-redirect goes here.
	Chained []json.RawMessage
}

// bridgeEntry is weft-bridge's plugin configuration object; the runtime adds
// name and cniVersion from the list (CNI SPEC, section 1).
type bridgeEntry struct {
	Type        string `json:"type"`
	Bridge      string `json:"bridge"`
	PodCIDR     string `json:"podCIDR"`
	MTU         int    `json:"mtu"`
	HairpinMode bool   `json:"hairpinMode"`
	DataDir     string `json:"dataDir"`
}

type conflist struct {
	CNIVersion string `json:"cniVersion"`
	// CNIVersions lets a runtime with CNI 1.1 support use STATUS and GC
	// while containerd 1.6 keeps reading cniVersion (CNI SPEC, section 1).
	CNIVersions []string `json:"cniVersions,omitempty"`
	Name        string   `json:"name"`
	Plugins     []any    `json:"plugins"`
}

// BuildConflist renders the conflist (CNI SPEC, section 1 "Configuration
// format"). It is pure, so the golden file test pins the exact bytes.
func BuildConflist(c ConflistConfig) ([]byte, error) {
	plugins := []any{bridgeEntry{
		Type: "weft-bridge", Bridge: c.Bridge, PodCIDR: c.PodCIDR.String(),
		MTU: c.MTU, HairpinMode: true, DataDir: c.DataDir,
	}}
	for i, raw := range c.Chained {
		var entry struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(raw, &entry); err != nil {
			return nil, fmt.Errorf("decode chained plugin %d: %w", i, err)
		}
		if entry.Type == "" {
			return nil, fmt.Errorf("chained plugin %d has no \"type\": %s", i, raw)
		}
		plugins = append(plugins, raw)
	}
	list := conflist{CNIVersion: c.CNIVersion, Name: NetworkName, Plugins: plugins}
	if c.CNIVersion != "1.1.0" {
		list.CNIVersions = []string{c.CNIVersion, "1.1.0"}
	}
	out, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode conflist: %w", err)
	}
	return append(out, '\n'), nil
}
