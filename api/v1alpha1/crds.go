package v1alpha1

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

//go:embed crds/*.yaml
var crdFiles embed.FS

// CRDs returns the generated CustomResourceDefinition YAML of every kind in
// this group, in file-name order, so installers ship exactly what
// controller-gen produced from these types.
func CRDs() ([][]byte, error) {
	names, err := fs.Glob(crdFiles, "crds/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list CRDs: %w", err)
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
