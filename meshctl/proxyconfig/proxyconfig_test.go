package proxyconfig

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/meshctl/envoy"
	"github.com/weftmesh/weft/meshctl/internal/golden"
	"github.com/weftmesh/weft/meshctl/output"
)

// now is within the test SVID's validity (issued 2026-11-22, 24h).
var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func dump(t *testing.T, name string) *envoy.ConfigDump {
	t.Helper()
	b, err := os.ReadFile("../testdata/" + name)
	require.NoError(t, err)
	d, err := envoy.Parse(b)
	require.NoError(t, err)
	return d
}

func render(t *testing.T, f output.Format, v output.Tabular) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, output.Print(&b, f, v))
	return b.Bytes()
}

func TestTablesGolden(t *testing.T) {
	d := dump(t, "httpbin-config-dump.json")
	for name, v := range map[string]output.Tabular{
		"listeners": Listeners(d), "clusters": Clusters(d), "routes": Routes(d),
		"endpoints": Endpoints(d), "secrets": Secrets(d, now),
	} {
		golden.Check(t, name+".txt", render(t, output.Table, v))
	}
	golden.Check(t, "secrets.json", render(t, output.JSON, Secrets(d, now)))
	golden.Check(t, "secrets.yaml", render(t, output.YAML, Secrets(d, now)))
}

func TestJSONIsEnvoysOwnSection(t *testing.T) {
	d := dump(t, "curl-config-dump.json")
	got := render(t, output.JSON, Listeners(d))
	assert.JSONEq(t, string(d.Sections[envoy.SectionListeners]), string(got))
}

func TestSecretsVerifyChain(t *testing.T) {
	d := dump(t, "curl-config-dump.json")
	r := Secrets(d, now)
	assert.Equal(t, "spiffe://cluster.local/ns/explore/sa/curl", r.Identity())
	require.NotNil(t, r.Secrets[0].Valid)
	assert.True(t, *r.Secrets[0].Valid)
	assert.Contains(t, r.Secrets[0].Chain, "Weft Root CA")

	expired := Secrets(d, now.Add(48*time.Hour))
	assert.False(t, *expired.Secrets[0].Valid)
	assert.Contains(t, expired.Secrets[0].Chain, "expired")
}

func TestParseClusterName(t *testing.T) {
	dir, port, host := ParseClusterName("outbound|8000||httpbin.explore.svc.cluster.local")
	assert.Equal(t, []string{"outbound", "8000", "httpbin.explore.svc.cluster.local"}, []string{dir, port, host})
	dir, port, host = ParseClusterName("inbound|8080||")
	assert.Equal(t, []string{"inbound", "8080", ""}, []string{dir, port, host})
	dir, _, _ = ParseClusterName("xds-grpc")
	assert.Empty(t, dir)
}
