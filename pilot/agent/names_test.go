package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/weftmesh/weft/pilot/generator"
)

// TestNamesMatchGenerator pins the contract between the bootstrap written
// here and the config pilot generates: generated TLS contexts fetch the
// agent's secrets through the bootstrap's SDS cluster, ADS runs over its
// xDS cluster, and pilot parses the node ID the bootstrap sets.
func TestNamesMatchGenerator(t *testing.T) {
	assert.Equal(t, generator.XDSClusterName, ClusterXDS)
	assert.Equal(t, generator.SDSClusterName, ClusterSDS)
	assert.Equal(t, generator.SDSSocketPath, DefaultSDSSocket)
	assert.Equal(t, generator.SecretDefault, SecretDefault)
	assert.Equal(t, generator.SecretRootCA, SecretRootCA)
	assert.EqualValues(t, generator.PortAdmin, EnvoyAdminPort)
	assert.EqualValues(t, generator.PortAgentMetrics, AgentPort)
	assert.EqualValues(t, generator.PortReadiness, ReadinessPort)
	assert.EqualValues(t, generator.PortStats, StatsPort)
	assert.Equal(t, generator.ReadinessPath, ReadinessPath)
	for gen, ours := range map[string]string{
		generator.MetaPodName: MetaPodName, generator.MetaPodNamespace: MetaPodNamespace,
		generator.MetaPodIP: MetaPodIP, generator.MetaServiceAccount: MetaServiceAccount,
		generator.MetaLabels: MetaLabels,
	} {
		assert.Equal(t, gen, ours)
	}

	pod := Pod{Name: "web-0.v1", Namespace: "shop"}
	assert.Equal(t, generator.NodeID(pod.Namespace, pod.Name), pod.NodeID())
	ns, name, err := generator.ParseNodeID(pod.NodeID())
	assert.NoError(t, err)
	assert.Equal(t, []string{"shop", "web-0.v1"}, []string{ns, name})
}
