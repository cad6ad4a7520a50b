package rbacgen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// OutDir is where the generated files go, relative to the repository root:
// the chart's files/rbac, which templates read with .Files.Get.
const OutDir = "install/helm/weft/files/rbac"

// HeaderFile is prepended to every generated file (relative to the root).
const HeaderFile = "tools/controller-gen/rbac-header.txt"

// GenerateConfig says which controller-gen to run where.
type GenerateConfig struct {
	ControllerGen string // the binary (make rbac builds it into .cache/bin)
	Root          string // repository root
	OutDir        string // absolute, or relative to Root; default OutDir
}

// Generate runs controller-gen's RBAC generator once per component over
// the packages that component links and replaces the YAML files of
// OutDir with the results, so a component or role that went away leaves
// no file behind.
func Generate(ctx context.Context, cfg GenerateConfig) error {
	out := cfg.OutDir
	if out == "" {
		out = OutDir
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(cfg.Root, out)
	}
	tmp, err := os.MkdirTemp("", "weft-rbac-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, c := range Components {
		if err := generateOne(ctx, cfg, c, tmp); err != nil {
			return err
		}
	}
	old, err := filepath.Glob(filepath.Join(out, "*.yaml"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("remove stale %s: %w", f, err)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	for _, c := range Components {
		data, err := os.ReadFile(filepath.Join(tmp, c.Name+".yaml"))
		if err != nil {
			return fmt.Errorf("controller-gen wrote no roles for %s: %w", c.Name, err)
		}
		if err := os.WriteFile(filepath.Join(out, c.Name+".yaml"), data, 0o644); err != nil {
			return fmt.Errorf("write roles of %s: %w", c.Name, err)
		}
	}
	return nil
}

func generateOne(ctx context.Context, cfg GenerateConfig, c Component, dir string) error {
	pkgs, err := Packages(ctx, cfg.Root, c)
	if err != nil {
		return err
	}
	paths := make([]string, len(pkgs))
	for i, p := range pkgs {
		paths[i] = p.ImportPath
	}
	cmd := exec.CommandContext(ctx, cfg.ControllerGen,
		fmt.Sprintf("rbac:roleName=%s,fileName=%s.yaml,headerFile=%s", c.Name, c.Name, HeaderFile),
		"paths="+strings.Join(paths, ";"),
		"output:rbac:dir="+dir)
	cmd.Dir = cfg.Root
	var outBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("controller-gen rbac for %s: %w: %s", c.Name, err, strings.TrimSpace(outBuf.String()))
	}
	return nil
}
