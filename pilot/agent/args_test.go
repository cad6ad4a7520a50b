package agent

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestArgsMiscLogLevel: the work-in-progress warnings of the stats access
// logger are muted at the default levels only; asking for debug output,
// or for less than errors, is not overridden.
func TestArgsMiscLogLevel(t *testing.T) {
	for level, muted := range map[string]bool{"warning": true, "info": true, "debug": false, "trace": false, "critical": false, "off": false} {
		sup, err := NewSupervisor(EnvoyConfig{Starter: &fakeStarter{}, LogLevel: level})
		require.NoError(t, err)
		assert.Equal(t, muted, slices.Contains(sup.Args(), "misc:error"), level)
	}
}
