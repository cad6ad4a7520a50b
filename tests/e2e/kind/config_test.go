package kind

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

func TestShippedConfigIsValid(t *testing.T) {
	c, err := Load(Config)
	require.NoError(t, err)
	assert.Equal(t, v1alpha4.ControlPlaneRole, c.Nodes[0].Role)
	assert.Equal(t, v1alpha4.WorkerRole, c.Nodes[2].Role)
}

func TestBadConfigsAreRejected(t *testing.T) {
	cases := map[string]string{
		"unknown field": "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking: {disableDefaultCNI: true, kubeProxyMode: none, bogus: 1}\n",
		"kindnet on":    "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking: {kubeProxyMode: none, podSubnet: 10.244.0.0/16, serviceSubnet: 10.96.0.0/16}\nnodes: [{role: control-plane}, {role: worker}, {role: worker}]\n",
		"kube-proxy on": "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking: {disableDefaultCNI: true, podSubnet: 10.244.0.0/16, serviceSubnet: 10.96.0.0/16}\nnodes: [{role: control-plane}, {role: worker}, {role: worker}]\n",
		"one node":      "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking: {disableDefaultCNI: true, kubeProxyMode: none, podSubnet: 10.244.0.0/16, serviceSubnet: 10.96.0.0/16}\n",
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load([]byte(data))
			assert.Error(t, err)
		})
	}
}
