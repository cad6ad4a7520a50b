package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeploymentFlag(t *testing.T) {
	var l deploymentList
	require.NoError(t, l.Set("weft-system/weft-pilot"))
	require.NoError(t, l.Set("kube-system/coredns"))
	assert.Equal(t, deploymentList{{Namespace: "weft-system", Name: "weft-pilot"}, {Namespace: "kube-system", Name: "coredns"}}, l)
	assert.Equal(t, "weft-system/weft-pilot,kube-system/coredns", l.String())
	for _, bad := range []string{"weft-pilot", "/weft-pilot", "weft-system/", "a/b/c"} {
		assert.ErrorContains(t, l.Set(bad), "want namespace/name", bad)
	}
	assert.Len(t, l, 2, "a bad value adds nothing")
}

func TestRunRejectsBadFlagsBeforeTouchingTheCluster(t *testing.T) {
	err := run(context.Background(), options{pullPolicy: "Sometimes", pauseImage: "p"})
	assert.ErrorContains(t, err, `--pull-policy "Sometimes"`)
	err = run(context.Background(), options{pullPolicy: "Never"})
	assert.ErrorContains(t, err, "--pause-image is required")
}
