package main

import (
	"os"
	"strings"
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

// TestInjectedTelemetryEnv reads the injector's golden sidecar with a
// collector configured: the resource attributes it sets refer to the
// downward-API variables the agent reads the pod from, and once the
// kubelet expanded them the agent does not hand them to Envoy twice.
func TestInjectedTelemetryEnv(t *testing.T) {
	data, err := os.ReadFile("../../../injector/testdata/out/otlp.yaml")
	require.NoError(t, err)
	var pod corev1.Pod
	require.NoError(t, yaml.Unmarshal(data, &pod))
	env := map[string]string{}
	for _, e := range pod.Spec.InitContainers[0].Env {
		env[e.Name] = e.Value
	}
	assert.NotEmpty(t, env["OTEL_EXPORTER_OTLP_ENDPOINT"])
	attrs := env["OTEL_RESOURCE_ATTRIBUTES"]
	for _, v := range []string{agent.EnvPodName, agent.EnvPodNamespace, agent.EnvNodeName} {
		assert.Contains(t, attrs, "$("+v+")")
	}
	p := agent.Pod{Name: "web-0", Namespace: "shop", NodeName: "node-a"}
	expanded := strings.NewReplacer("$("+agent.EnvPodName+")", p.Name, "$("+agent.EnvPodNamespace+")", p.Namespace,
		"$("+agent.EnvNodeName+")", p.NodeName).Replace(attrs)
	getenv := func(k string) string {
		if k == "OTEL_RESOURCE_ATTRIBUTES" {
			return expanded
		}
		return ""
	}
	assert.Equal(t, agent.EnvoyResourceEnv(p, func(string) string { return "" }),
		agent.EnvoyResourceEnv(p, agent.WithoutPodAttributes(p, getenv)), "Envoy's attributes as if the injector had set none")
}
