package main

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/pilot/agent"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestParsesInjectedArgs parses the exact arguments the injector gives the
// sidecar (its golden output), so the two cannot drift apart.
func TestParsesInjectedArgs(t *testing.T) {
	data, err := os.ReadFile("../../../injector/testdata/out/probes.yaml")
	require.NoError(t, err)
	var pod corev1.Pod
	require.NoError(t, yaml.Unmarshal(data, &pod))
	args := pod.Spec.InitContainers[0].Args
	require.NotEmpty(t, args)

	cfg, td, err := parseFlags(args)
	require.NoError(t, err)
	assert.Equal(t, "cluster.local", td)
	assert.Equal(t, "/var/run/weft/proxy/sds.sock", cfg.Agent.SDSSocket)
	assert.Equal(t, "/var/run/weft/workload/socket", cfg.Agent.WorkloadSocket)
	assert.Equal(t, "/var/run/secrets/tokens/weft-token", cfg.Agent.TokenFile)
	assert.Equal(t, "/var/run/weft/root-cert/root-cert.pem", cfg.Agent.CARootFile)
	assert.Equal(t, "weft-pilot.weft-system.svc:15012", cfg.Agent.CAAddress)
	assert.Equal(t, "weft-pilot.weft-system.svc:15010", cfg.Bootstrap.XDSAddress)
	assert.Equal(t, agent.DefaultEnvoyBinary, cfg.Envoy.Binary)
	assert.Equal(t, agent.DefaultBootstrapPath, cfg.Envoy.BootstrapPath)
	assert.Equal(t, 5*time.Second, cfg.Envoy.DrainDuration)
	assert.Equal(t, 2, cfg.Envoy.Concurrency)

	// The app's probes the injector moved into WEFT_APP_PROBERS decode.
	env := map[string]string{}
	for _, e := range pod.Spec.InitContainers[0].Env {
		env[e.Name] = e.Value
	}
	probers, err := agent.AppProbersFromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Len(t, probers, 3)
}

func TestRejectsRemovedSocketDir(t *testing.T) {
	_, _, err := parseFlags([]string{"--socket-dir=/var/run/weft"})
	assert.Error(t, err)
}
