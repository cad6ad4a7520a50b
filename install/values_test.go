package install

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

func TestValuesFileRoundTripAndTypos(t *testing.T) {
	v := Defaults()
	v.APIServerHost, v.CNI.PerNodeDirs = "172.20.0.1", true
	v.Pilot.Replicas, v.Pilot.Resources.Limits.Memory = 2, "1Gi"
	data, err := yaml.Marshal(v)
	require.NoError(t, err)
	got, err := ReadValues(data)
	require.NoError(t, err)
	assert.Equal(t, v, got)
	partial, err := ReadValues([]byte("trustDomain: example.org\npilot: {replicas: 2}\n"))
	require.NoError(t, err)
	assert.Equal(t, "example.org", partial.TrustDomain)
	assert.Equal(t, 2, partial.Pilot.Replicas)
	assert.Equal(t, Defaults().Registry, partial.Registry, "unset fields keep their defaults")
	assert.Equal(t, Defaults().Pilot.WorkloadCertTTL, partial.Pilot.WorkloadCertTTL, "unset nested fields keep their defaults")
	_, err = ReadValues([]byte("trustDomian: example.org\n"))
	assert.ErrorContains(t, err, "trustDomian")
}

// TestChartValuesAreTheGoDefaults keeps the chart's values.yaml and
// Defaults() one set of values: same keys, same defaults, so `helm
// install` and `meshctl install` agree.
func TestChartValuesAreTheGoDefaults(t *testing.T) {
	data, err := os.ReadFile("helm/weft/values.yaml")
	require.NoError(t, err)
	var chart map[string]any
	require.NoError(t, yaml.Unmarshal(data, &chart))
	goJSON, err := json.Marshal(Defaults())
	require.NoError(t, err)
	var defaults map[string]any
	require.NoError(t, json.Unmarshal(goJSON, &defaults))
	// omitempty fields are "" in values.yaml.
	defaults["apiServerHost"], defaults["apiServerPort"] = "", ""
	assert.Equal(t, defaults, chart, "install/helm/weft/values.yaml and install.Defaults() differ")
	fromFile, err := ReadValues(data)
	require.NoError(t, err, "values.yaml must read as install.Values")
	assert.Equal(t, Defaults(), fromFile)
}

// TestRenderRejectsInvalidValues: the chart's values.schema.json rejects
// bad values with a message naming the value and what it should be.
func TestRenderRejectsInvalidValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Values)
		want []string
	}{
		{"trust domain with capitals", func(v *Values) { v.TrustDomain = "Example.COM" },
			[]string{"/trustDomain", "'Example.COM' is not a SPIFFE trust domain"}},
		{"trust domain with a scheme", func(v *Values) { v.TrustDomain = "spiffe://cluster.local" },
			[]string{"/trustDomain", "is not a SPIFFE trust domain"}},
		{"zero TTL", func(v *Values) { v.Pilot.WorkloadCertTTL = "0s" },
			[]string{"/pilot/workloadCertTTL", "'0s' is not a positive Go duration"}},
		{"negative TTL", func(v *Values) { v.Pilot.WorkloadCertTTL = "-1h" },
			[]string{"/pilot/workloadCertTTL", "'-1h' is not a positive Go duration"}},
		{"TTL without unit", func(v *Values) { v.Pilot.RootCertTTL = "3600" },
			[]string{"/pilot/rootCertTTL", "is not a positive Go duration"}},
		{"CIDR without prefix", func(v *Values) { v.ClusterCIDR = "10.244.0.0" },
			[]string{"/clusterCIDR", "is not an IPv4 or IPv6 CIDR"}},
		{"CIDR out of range", func(v *Values) { v.ServiceCIDR = "10.96.0.300/16" },
			[]string{"/serviceCIDR", "is not an IPv4 or IPv6 CIDR"}},
		{"DNS service IP", func(v *Values) { v.DNSServiceIP = "kube-dns" },
			[]string{"/dnsServiceIP", "is not an IPv4 or IPv6 address"}},
		{"pull policy", func(v *Values) { v.PullPolicy = "Sometimes" },
			[]string{"/pullPolicy", "must be one of 'Always', 'IfNotPresent', 'Never'"}},
		{"zero replicas", func(v *Values) { v.Injector.Replicas = 0 },
			[]string{"/injector/replicas", "a replica count of at least 1"}},
		{"quantity", func(v *Values) { v.CNINode.Resources.Requests.Memory = "lots" },
			[]string{"/cniNode/resources/requests/memory", "is not a Kubernetes quantity"}},
		{"API server host without port", func(v *Values) { v.APIServerHost = "10.0.0.1" },
			[]string{"/apiServerPort", "required with apiServerHost"}},
		{"relative host path", func(v *Values) { v.CNI.BinDir = "opt/cni/bin" },
			[]string{"/cni/binDir", "is not an absolute host path"}},
		{"OTLP endpoint without scheme", func(v *Values) { v.Telemetry.OTLPEndpoint = "collector:4317" },
			[]string{"/telemetry/otlpEndpoint", "is not an OTLP/gRPC collector URL"}},
		{"log level", func(v *Values) { v.LogLevel = "trace" },
			[]string{"/logLevel", "must be one of 'info', 'debug'"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Defaults()
			tc.set(&v)
			_, err := Render(v)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

// TestSchemaRejectsUnknownKeys covers what Go's typed Values cannot carry:
// a helm user's values file with a typo.
func TestSchemaRejectsUnknownKeys(t *testing.T) {
	ch, err := LoadChart()
	require.NoError(t, err)
	vals, err := Defaults().chartValues()
	require.NoError(t, err)
	vals["trustDomian"] = "example.org"
	vals["pilot"].(map[string]any)["replica"] = 2
	_, err = renderValues(ch, vals)
	require.Error(t, err)
	assert.ErrorContains(t, err, "trustDomian")
	assert.ErrorContains(t, err, "replica")
}
