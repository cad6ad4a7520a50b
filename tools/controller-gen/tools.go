//go:build tools

// Package controllergen records the controller-gen command this module builds.
package controllergen

import _ "sigs.k8s.io/controller-tools/cmd/controller-gen"
