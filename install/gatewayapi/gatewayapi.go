// Package gatewayapi ships the Gateway API CRDs Weft's mesh (GAMMA) routing
// needs — HTTPRoute, GRPCRoute and ReferenceGrant from the standard channel
// of sigs.k8s.io/gateway-api — pinned to the module version in go.mod, so
// the CRDs in a cluster and the types pilot decodes them with always agree
// (https://gateway-api.sigs.k8s.io/mesh/). The YAML is copied verbatim from
// the module cache by `go generate ./install/gatewayapi/`, with the
// project's Apache-2.0 license header in front.
package gatewayapi

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

// Regenerate crds/ after changing the gateway-api version in go.mod:
//go:generate go run ./internal/copycrds -out crds httproutes grpcroutes referencegrants

// Version is the pinned Gateway API bundle version; a test checks that it
// matches the CRDs' gateway.networking.k8s.io/bundle-version annotation.
const Version = "v1.6.3"

// Channel is the Gateway API release channel the CRDs come from.
const Channel = "standard"

//go:embed crds/*.yaml
var crdFiles embed.FS

// CRDs returns the CustomResourceDefinition YAML documents, in file-name
// order.
func CRDs() ([][]byte, error) {
	names, err := fs.Glob(crdFiles, "crds/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list gateway api CRDs: %w", err)
	}
	sort.Strings(names)
	out := make([][]byte, 0, len(names))
	for _, n := range names {
		data, err := crdFiles.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", n, err)
		}
		out = append(out, data)
	}
	return out, nil
}
