package injector

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// envOf is a container's environment by name; it fails on a name set twice.
func envOf(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range c.Env {
		_, dup := out[e.Name]
		require.False(t, dup, "%s sets %s twice", c.Name, e.Name)
		out[e.Name] = e.Value
	}
	return out
}

func TestSidecarTelemetryEnv(t *testing.T) {
	ns, pod := readCase(t, "testdata/in/otlp.yaml")
	// The app's env after injection: its own, plus the Workload API socket.
	appEnv := append(slices.Clone(pod.Spec.Containers[0].Env), corev1.EnvVar{Name: SPIFFEEndpointSocketEnv, Value: "unix://" + WorkloadSocket})

	t.Run("no endpoint: no OTEL variables", func(t *testing.T) {
		res, err := Mutate(pod, ns, testConfig())
		require.NoError(t, err)
		for name := range envOf(t, res.Pod.Spec.InitContainers[0]) {
			assert.NotContains(t, name, "OTEL_")
		}
		assert.Equal(t, appEnv, res.Pod.Spec.Containers[0].Env)
	})

	t.Run("endpoint: the sidecar exports, the app keeps its own", func(t *testing.T) {
		res, err := Mutate(pod, ns, caseConfig("otlp"))
		require.NoError(t, err)
		env := envOf(t, res.Pod.Spec.InitContainers[0])
		assert.Equal(t, testOTLPEndpoint, env[EnvOTLPEndpoint])
		assert.Equal(t, "300000", env[EnvMetricExportInterval], "5 minutes in milliseconds")
		assert.Equal(t, "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE),k8s.node.name=$(NODE_NAME)", env[EnvResourceAttributes])
		// $(VAR) only expands variables defined earlier in the list.
		names := map[string]int{}
		for i, e := range res.Pod.Spec.InitContainers[0].Env {
			names[e.Name] = i
		}
		for _, v := range []string{"POD_NAME", "POD_NAMESPACE", "NODE_NAME"} {
			assert.Less(t, names[v], names[EnvResourceAttributes], "%s defined before the reference", v)
		}
		app := res.Pod.Spec.Containers[0]
		assert.Equal(t, appEnv, app.Env, "the app's OTEL_* variables are untouched")
		envOf(t, app)
	})

	t.Run("zero interval leaves the SDK default", func(t *testing.T) {
		cfg := caseConfig("otlp")
		cfg.MetricExportInterval = 0
		res, err := Mutate(pod, ns, cfg)
		require.NoError(t, err)
		env := envOf(t, res.Pod.Spec.InitContainers[0])
		assert.NotContains(t, env, EnvMetricExportInterval)
		assert.Contains(t, env, EnvOTLPEndpoint)
	})
}

func TestConfigValidatesOTLPEndpoint(t *testing.T) {
	for endpoint, ok := range map[string]bool{
		"": true, "http://collector.obs.svc:4317": true, "https://otel.example.com": true,
		"collector:4317": false, "grpc://collector:4317": false, "http://": false, "http://%zz": false,
	} {
		cfg := testConfig()
		cfg.OTLPEndpoint = endpoint
		err := cfg.Validate()
		assert.Equal(t, ok, err == nil, "%q: %v", endpoint, err)
	}
	cfg := testConfig()
	cfg.MetricExportInterval = -time.Second
	assert.Error(t, cfg.Validate())
}
