package main

import (
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseConfig(t *testing.T) {
	c, err := parseConfig([]byte(`{"cniVersion":"1.0.0","name":"weft","type":"weft-redirect","kubeconfig":"/etc/cni/net.d/weft-kubeconfig"}`))
	require.NoError(t, err)
	assert.Equal(t, "/etc/cni/net.d/weft-kubeconfig", c.Kubeconfig)
	assert.Equal(t, 5*time.Second, c.timeout)

	const base = `"cniVersion":"1.0.0","name":"weft","type":"weft-redirect"`
	tests := map[string]struct{ conf, want string }{
		"not json":          {`{`, "decode weft-redirect config"},
		"no kubeconfig":     {`{` + base + `}`, `invalid weft-redirect config: "kubeconfig" is required`},
		"relative":          {`{` + base + `,"kubeconfig":"kc"}`, `invalid weft-redirect config: kubeconfig "kc" is not an absolute path`},
		"bad timeout":       {`{` + base + `,"kubeconfig":"/kc","apiTimeout":"soon"}`, `invalid weft-redirect config: apiTimeout "soon" is not a positive duration`},
		"negative timeout":  {`{` + base + `,"kubeconfig":"/kc","apiTimeout":"-1s"}`, `invalid weft-redirect config: apiTimeout "-1s" is not a positive duration`},
		"bad prevResult ok": {`{` + base + `,"kubeconfig":"/kc","apiTimeout":"1s","prevResult":{}}`, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.conf))
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			var cniErr *types.Error
			require.ErrorAs(t, err, &cniErr)
			assert.Equal(t, tt.want, cniErr.Msg)
		})
	}
}

func TestParseArgs(t *testing.T) {
	ref, ok, err := parseArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u1")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, podRef{Namespace: "default", Name: "web", UID: "u1"}, ref)

	_, ok, err = parseArgs("K8S_POD_NAME=web;SOMETHING_NEW=1") // unknown keys are fine without IgnoreUnknown
	require.NoError(t, err)
	assert.False(t, ok, "no namespace")
	_, ok, err = parseArgs("")
	require.NoError(t, err)
	assert.False(t, ok)
	_, _, err = parseArgs("K8S_POD_NAME")
	require.ErrorContains(t, err, "parse CNI_ARGS")
}
