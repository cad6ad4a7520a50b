// Package rbacgen generates the chart's RBAC from the
// `+kubebuilder:rbac` markers that sit next to the code needing each
// permission (controller-gen's RBAC generator, sigs.k8s.io/controller-tools,
// pinned in tools/controller-gen), one file per component in
// install/helm/weft/files/rbac. A component's roles are the markers of
// exactly the packages its commands link (`go list -deps`), so a shared
// package grants what it does to every component that runs it and nothing
// to the others. Markers reads the same markers without controller-gen, so
// a unit test can tell a stale file from a current one anywhere.
package rbacgen

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Component is one ServiceAccount of the chart and the commands that run
// with its token.
type Component struct {
	// Name is the ServiceAccount, the default role name and the file name
	// (<Name>.yaml).
	Name string
	// Commands are the main packages, relative to the repository root.
	Commands []string
}

// Components are Weft's own components. CoreDNS (components.dns) is not
// one: its RBAC stays hand-written in templates/dns.yaml, there is no Weft
// code to mark.
var Components = []Component{
	{Name: "weft-pilot", Commands: []string{"./pilot/cmd/pilot"}},
	{Name: "weft-injector", Commands: []string{"./injector/cmd/injector"}},
	// weft-redirect, the chained CNI plugin, runs with the token of
	// weft-cni-node, which writes its kubeconfig.
	{Name: "weft-cni-node", Commands: []string{"./cni-plugin/cmd/weft-cni-node", "./cni-plugin/cmd/weft-redirect"}},
	{Name: "weft-proxy", Commands: []string{"./proxy/cmd/weft-proxy"}},
	// The chart's pre-delete hook (templates/uninstall-hook.yaml).
	{Name: "weft-uninstall", Commands: []string{"./install/cmd/weft-uninstall"}},
}

// Package is one of the repository's Go packages that a component links.
type Package struct {
	ImportPath string
	Dir        string
	GoFiles    []string // file names in Dir, as the build sees them
}

// Packages lists the repository's own packages the component's commands
// link (standard library and other modules left out), run from root.
func Packages(ctx context.Context, root string, c Component) ([]Package, error) {
	args := append([]string{"list", "-deps", "-f",
		`{{if and .Module .Module.Main}}{{.ImportPath}}{{"\t"}}{{.Dir}}{{"\t"}}{{join .GoFiles ","}}{{end}}`},
		c.Commands...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list packages of %s: %w: %s", c.Name, err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []Package
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("go list packages of %s: unexpected line %q", c.Name, line)
		}
		pkgs = append(pkgs, Package{ImportPath: f[0], Dir: f[1], GoFiles: strings.Split(f[2], ",")})
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("component %s links no package of this module", c.Name)
	}
	return pkgs, nil
}

// ModuleRoot is the directory of the main module seen from dir.
func ModuleRoot(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}
