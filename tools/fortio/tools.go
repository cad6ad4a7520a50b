//go:build tools

// Package fortio records the fortio binary this module builds.
package fortio

import _ "fortio.org/fortio"
