// Command copycrds copies standard-channel Gateway API CRDs from the
// sigs.k8s.io/gateway-api module (the version go.mod pins, found with `go
// list -m`) into an output directory, prefixed with the upstream license
// header, for package gatewayapi to embed.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

const module = "sigs.k8s.io/gateway-api"

// header is the license notice of the copied files (the upstream LICENSE is
// Apache-2.0; the YAML itself carries no header).
const header = `# Copied verbatim from %s@%s, config/crd/standard/%s.
# Copyright The Kubernetes Authors.
# Licensed under the Apache License, Version 2.0 (the "License"); you may not
# use this file except in compliance with the License. You may obtain a copy
# of the License at http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# Regenerate with: go generate ./install/gatewayapi/
`

func main() {
	out := flag.String("out", "crds", "output directory")
	flag.Parse()
	if err := run(*out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "copycrds:", err)
		os.Exit(1)
	}
}

func run(out string, resources []string) error {
	raw, err := exec.Command("go", "list", "-m", "-json", module).Output()
	if err != nil {
		return fmt.Errorf("go list -m %s: %w", module, err)
	}
	var m struct{ Version, Dir string }
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("decode go list output: %w", err)
	}
	if m.Dir == "" {
		return fmt.Errorf("%s is not in the module cache (go mod download %s)", module, module)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	for _, r := range resources {
		name := "gateway.networking.k8s.io_" + r + ".yaml"
		data, err := os.ReadFile(filepath.Join(m.Dir, "config", "crd", "standard", name))
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		var buf bytes.Buffer
		fmt.Fprintf(&buf, header, module, m.Version, name)
		buf.Write(data)
		if err := os.WriteFile(filepath.Join(out, name), buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}
