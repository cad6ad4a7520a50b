package install

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

const collectorURL = "http://weft-otel-collector.weft-system.svc.cluster.local:4317"

func collectorValues() Values {
	v := Defaults()
	v.Components.DNS = true
	v.Telemetry.Collector.Enabled = true
	return v
}

// otlpEnv is the OTLP endpoint a workload's first container is given, or "".
func otlpEnv(t *testing.T, spec corev1.PodSpec) string {
	t.Helper()
	for _, e := range spec.Containers[0].Env {
		if e.Name == "OTEL_EXPORTER_OTLP_ENDPOINT" {
			return e.Value
		}
	}
	return ""
}

var otlpWorkloads = [][3]string{
	{"DaemonSet", "weft-system", "weft-cni-node"}, {"DaemonSet", "weft-system", "weft-proxy"},
	{"Deployment", "weft-system", "weft-pilot"}, {"Deployment", "weft-system", "weft-injector"},
}

func TestRenderCollector(t *testing.T) {
	objs := render(t, collectorValues())
	names := kinds(t, collectorValues())
	for _, n := range []string{"ServiceAccount", "ConfigMap", "Service", "Deployment"} {
		assert.Contains(t, names, n+" weft-system/weft-otel-collector")
	}

	cm := find[corev1.ConfigMap](t, objs, "ConfigMap", "weft-system", "weft-otel-collector")
	want, err := os.ReadFile("helm/weft/files/otel-collector.yaml")
	require.NoError(t, err)
	assert.Equal(t, string(want), cm.Data["config.yaml"], "the ConfigMap carries the file tools/otelcol validates, unchanged")

	svc := find[corev1.Service](t, objs, "Service", "weft-system", "weft-otel-collector")
	var ports []int32
	for _, p := range svc.Spec.Ports {
		ports = append(ports, p.Port)
	}
	assert.Equal(t, []int32{4317, 4318, 16686}, ports)

	d := find[appsv1.Deployment](t, objs, "Deployment", "weft-system", "weft-otel-collector")
	assert.Equal(t, "weft-otel-collector", d.Spec.Template.Labels["app"], "meshctl finds the trace store by app=weft-otel-collector")
	spec := d.Spec.Template.Spec
	require.Len(t, spec.Containers, 2)
	col, store := spec.Containers[0], spec.Containers[1]
	assert.Equal(t, "otel-collector", col.Name)
	assert.Equal(t, "weft.local/otel-collector:dev", col.Image)
	assert.Equal(t, []string{"--config=/etc/otelcol/config.yaml"}, col.Args)
	assert.Equal(t, "trace-store", store.Name)
	assert.Equal(t, col.Image, store.Image, "one image holds both binaries")
	assert.Equal(t, []string{"/usr/local/bin/weft-trace-store"}, store.Command)
	assert.Subset(t, store.Args, []string{"--otlp-addr=127.0.0.1:4319", "--http-addr=:16686", "--max-traces=1000", "--max-spans-per-trace=1000"})
	assert.Equal(t, "256Mi", store.Resources.Limits.Memory().String())
	assert.False(t, *spec.AutomountServiceAccountToken, "the collector calls no Kubernetes API")
	for _, c := range spec.Containers {
		assert.NotNil(t, c.ReadinessProbe, c.Name)
		assert.NotNil(t, c.LivenessProbe, c.Name)
		assert.NotEmpty(t, c.Resources.Requests, c.Name)
		assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem, c.Name)
	}
	require.NotNil(t, spec.Affinity)
	assert.NotNil(t, spec.Affinity.PodAntiAffinity)
}

func TestCollectorIsWhereComponentsPush(t *testing.T) {
	objs := render(t, collectorValues())
	for _, w := range otlpWorkloads {
		assert.Equal(t, collectorURL, otlpEnv(t, podSpec(t, objs, w[0], w[1], w[2])), w[2])
	}
	for _, ds := range []string{"weft-cni-node", "weft-proxy"} {
		assert.Equal(t, corev1.DNSClusterFirstWithHostNet, podSpec(t, objs, "DaemonSet", "weft-system", ds).DNSPolicy,
			"%s is on the host network and must resolve the collector's Service name through cluster DNS", ds)
	}
	pilot := podSpec(t, objs, "Deployment", "weft-system", "weft-pilot").Containers[0].Args
	assert.Contains(t, pilot, "--tracing-collector=weft-otel-collector.weft-system.svc.cluster.local:4317")
	assert.Contains(t, pilot, "--tracing=true", "with the collector, the sidecars trace by default")
	assert.Contains(t, pilot, "--tracing-sampling=1")

	// Another cluster domain, another sampling rate.
	v := collectorValues()
	v.ClusterDomain, v.Telemetry.Tracing.Sampling = "corp.internal", 12.5
	objs = render(t, v)
	pilot = podSpec(t, objs, "Deployment", "weft-system", "weft-pilot").Containers[0].Args
	assert.Contains(t, pilot, "--tracing-collector=weft-otel-collector.weft-system.svc.corp.internal:4317")
	assert.Contains(t, pilot, "--tracing-sampling=12.5")
	assert.Equal(t, "http://weft-otel-collector.weft-system.svc.corp.internal:4317",
		otlpEnv(t, podSpec(t, objs, "Deployment", "weft-system", "weft-pilot")))
}

func TestOTLPEndpointWinsOverTheCollector(t *testing.T) {
	v := collectorValues()
	v.Telemetry.OTLPEndpoint = "http://otel.observability:4317"
	objs := render(t, v)
	for _, w := range otlpWorkloads {
		assert.Equal(t, v.Telemetry.OTLPEndpoint, otlpEnv(t, podSpec(t, objs, w[0], w[1], w[2])), w[2])
	}
	for _, ds := range []string{"weft-cni-node", "weft-proxy"} {
		assert.Empty(t, podSpec(t, objs, "DaemonSet", "weft-system", ds).DNSPolicy, "%s keeps the node's DNS for an operator's endpoint", ds)
	}
	assert.Contains(t, podSpec(t, objs, "Deployment", "weft-system", "weft-pilot").Containers[0].Args,
		"--tracing-collector=weft-otel-collector.weft-system.svc.cluster.local:4317", "Envoy still reports to the chart's collector")
}

func TestTelemetryIsOffByDefault(t *testing.T) {
	v := Defaults()
	v.Components.DNS = true
	objs := render(t, v)
	assert.NotContains(t, strings.Join(kinds(t, v), "\n"), "weft-otel-collector")
	for _, w := range otlpWorkloads {
		spec := podSpec(t, objs, w[0], w[1], w[2])
		assert.Empty(t, otlpEnv(t, spec), w[2])
		assert.Empty(t, spec.DNSPolicy, w[2])
	}
	for _, a := range podSpec(t, objs, "Deployment", "weft-system", "weft-pilot").Containers[0].Args {
		assert.False(t, strings.HasPrefix(a, "--tracing") || strings.HasPrefix(a, "--access-log"), "pilot arg %s without telemetry values", a)
	}
}

func TestRenderAccessLog(t *testing.T) {
	pilotArgs := func(v Values) []string {
		return podSpec(t, render(t, v), "Deployment", "weft-system", "weft-pilot").Containers[0].Args
	}
	v := Defaults()
	v.Telemetry.AccessLog.Enabled = true
	args := pilotArgs(v)
	assert.Contains(t, args, "--access-log")
	assert.False(t, slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--access-log-namespaces") }),
		"no namespaces: every namespace")
	v.Telemetry.AccessLog.Namespaces = []string{"shop", "billing"}
	assert.Subset(t, pilotArgs(v), []string{"--access-log", "--access-log-namespaces=shop,billing"})
	v.Telemetry.AccessLog.Enabled = false
	assert.NotContains(t, strings.Join(pilotArgs(v), " "), "--access-log", "namespaces alone turn nothing on")
	v.Telemetry.AccessLog = AccessLogValues{Enabled: true} // nil namespaces, as Go code may build them
	assert.Contains(t, pilotArgs(v), "--access-log")
}

func TestRenderRequestMetrics(t *testing.T) {
	pilotArgs := func(v Values) []string {
		return podSpec(t, render(t, v), "Deployment", "weft-system", "weft-pilot").Containers[0].Args
	}
	v := Defaults()
	assert.Contains(t, pilotArgs(v), "--request-metrics=true", "on by default")
	v.Telemetry.RequestMetrics.Enabled = false
	assert.Contains(t, pilotArgs(v), "--request-metrics=false")
	read, err := ReadValues([]byte("telemetry:\n  requestMetrics: {enabled: false}\n"))
	require.NoError(t, err)
	assert.Contains(t, pilotArgs(read), "--request-metrics=false")
	assert.True(t, Defaults().Telemetry.RequestMetrics.Enabled)
}

func TestTelemetryValuesAreValidated(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Values)
		want []string
	}{
		{"sampling above 100", func(v *Values) { v.Telemetry.Tracing.Sampling = 150 },
			[]string{"/telemetry/tracing/sampling", "a percentage from 0 to 100"}},
		{"negative sampling", func(v *Values) { v.Telemetry.Tracing.Sampling = -1 },
			[]string{"/telemetry/tracing/sampling"}},
		{"namespace with capitals", func(v *Values) { v.Telemetry.AccessLog.Namespaces = []string{"Shop"} },
			[]string{"/telemetry/accessLog/namespaces/0", "'Shop' is not a namespace name"}},
		{"no traces kept", func(v *Values) { v.Telemetry.Collector.TraceStore.MaxTraces = 0 },
			[]string{"/telemetry/collector/traceStore/maxTraces", "a number of traces from 1 to 100000"}},
		{"collector quantity", func(v *Values) { v.Telemetry.Collector.Resources.Limits.Memory = "much" },
			[]string{"/telemetry/collector/resources/limits/memory", "is not a Kubernetes quantity"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := collectorValues()
			tc.set(&v)
			_, err := Render(v)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

func TestTelemetryValuesReadFromAFile(t *testing.T) {
	v, err := ReadValues([]byte("telemetry:\n  collector: {enabled: true}\n  accessLog: {enabled: true, namespaces: [shop]}\n"))
	require.NoError(t, err)
	assert.True(t, v.Telemetry.Collector.Enabled)
	assert.Equal(t, Defaults().Telemetry.Collector.TraceStore, v.Telemetry.Collector.TraceStore, "unset nested values keep their defaults")
	assert.Equal(t, []string{"shop"}, v.Telemetry.AccessLog.Namespaces)
	assert.EqualValues(t, 1, v.Telemetry.Tracing.Sampling)
	_, err = ReadValues([]byte("telemetry:\n  colector: {enabled: true}\n"))
	assert.ErrorContains(t, err, "colector")
}
