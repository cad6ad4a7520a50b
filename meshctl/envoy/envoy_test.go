package envoy

import (
	"net/netip"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The dumps are real: /config_dump?include_eds of the curl and httpbin
// sample pods (namespace explore) on the local cluster, bootstrap trimmed.
func load(t *testing.T, name string) *ConfigDump {
	t.Helper()
	b, err := os.ReadFile("../testdata/" + name)
	require.NoError(t, err)
	d, err := Parse(b)
	require.NoError(t, err)
	return d
}

func TestParseRealDump(t *testing.T) {
	d := load(t, "curl-config-dump.json")
	for _, s := range []string{SectionListeners, SectionClusters, SectionRoutes, SectionEndpoints, SectionSecrets} {
		assert.Contains(t, d.Sections, s)
	}
	l, ok := d.Listener("virtualOutbound")
	require.True(t, ok)
	assert.Equal(t, StateActive, l.State)
	assert.Equal(t, "0.0.0.0:15001", l.Address.String())
	require.NotNil(t, l.DefaultFilterChain)
	assert.Equal(t, "cluster PassthroughCluster", l.DefaultFilterChain.Destination())

	c, ok := d.Cluster("outbound|8000||httpbin.explore.svc.cluster.local")
	require.True(t, ok)
	mode, tls := c.UpstreamTLS()
	assert.Equal(t, "auto", mode)
	assert.Equal(t, []string{"spiffe://cluster.local/ns/explore/sa/httpbin"}, tls.SANs)
	la, ok := d.LoadAssignment(c.EDSName())
	require.True(t, ok)
	require.Len(t, la.All(), 3)
	assert.Equal(t, "weft", la.All()[0].TLSMode("envoy.transport_socket_match", "tlsMode"))
	assert.Equal(t, "HEALTHY", la.All()[0].Health())
}

func TestParseRejectsGarbage(t *testing.T) {
	_, err := Parse([]byte("not json"))
	assert.Error(t, err)
}

func TestMatchChainOutbound(t *testing.T) {
	d := load(t, "curl-config-dump.json")
	l, _ := d.Listener("virtualOutbound")
	svc := l.FilterChains[0]
	require.NotEmpty(t, svc.Match.PrefixRanges)
	p, err := svc.Match.PrefixRanges[0].Prefix()
	require.NoError(t, err)
	dst := netip.AddrPortFrom(p.Addr(), uint16(*svc.Match.DestinationPort))

	fc, isDefault, ok := MatchChain(l, Connection{Dest: dst, TransportProtocol: "raw_buffer"})
	require.True(t, ok)
	assert.False(t, isDefault)
	assert.Equal(t, svc.Name, fc.Name)

	_, isDefault, ok = MatchChain(l, Connection{Dest: netip.MustParseAddrPort("10.244.9.9:8080"), TransportProtocol: "raw_buffer"})
	assert.True(t, ok)
	assert.True(t, isDefault, "pod IPs fall to the passthrough chain")
}

func TestMatchChainInboundModes(t *testing.T) {
	dst := netip.MustParseAddrPort("10.244.1.3:8080")
	for _, tc := range []struct {
		dump, transport string
		alpn            []string
		chain           string
		tls             bool
	}{
		{"httpbin-config-dump.json", "tls", []string{"weft"}, "inbound|8080||mtls", true},
		{"httpbin-config-dump.json", "raw_buffer", nil, "inbound|8080||plaintext", false},
		{"httpbin-config-dump.json", "tls", []string{"h2"}, "inbound|8080||app-tls", false},
		{"httpbin-strict-config-dump.json", "raw_buffer", nil, "inbound|8080||mtls", true},
		{"httpbin-strict-config-dump.json", "tls", []string{"weft"}, "inbound|8080||mtls", true},
	} {
		d := load(t, tc.dump)
		l, ok := d.Listener("virtualInbound")
		require.True(t, ok)
		fc, _, ok := MatchChain(l, Connection{Dest: dst, TransportProtocol: tc.transport, ALPN: tc.alpn})
		require.True(t, ok, tc)
		assert.Equal(t, tc.chain, fc.Name, "%s %s", tc.dump, tc.transport)
		_, hasTLS := fc.TransportSocket.TLS()
		assert.Equal(t, tc.tls, hasTLS)
	}
}

func TestSelectRoute(t *testing.T) {
	prefix, exact := "/", "/exact"
	regex := RouteMatch{SafeRegex: &struct {
		Regex string `json:"regex"`
	}{Regex: "/r[0-9]+"}}
	rc := RouteConfig{Name: "r", VirtualHosts: []VirtualHost{
		{Name: "any", Domains: []string{"*"}, Routes: []Route{{Name: "all", Match: RouteMatch{Prefix: &prefix}}}},
		{Name: "suffix", Domains: []string{"*.example.com"}, Routes: []Route{
			{Name: "exact", Match: RouteMatch{Path: &exact}},
			{Name: "re", Match: regex},
			{Name: "hdr", Match: RouteMatch{Prefix: &prefix, Headers: []struct {
				Name string `json:"name"`
			}{{Name: "x-canary"}}}},
		}},
		{Name: "exact-host", Domains: []string{"a.example.com"}, Routes: []Route{{Name: "a", Match: RouteMatch{Prefix: &prefix}}}},
	}}
	for _, tc := range []struct {
		host, path, vh, route string
		found                 bool
	}{
		{"a.example.com:80", "/x", "exact-host", "a", true},
		{"b.example.com", "/exact", "suffix", "exact", true},
		{"b.example.com", "/r12", "suffix", "re", true},
		{"b.example.com", "/other", "suffix", "", false},
		{"other", "/", "any", "all", true},
	} {
		c, ok := SelectRoute(rc, Request{Host: tc.host, Path: tc.path})
		assert.Equal(t, tc.found, ok, tc)
		assert.Equal(t, tc.vh, c.VirtualHost.Name, tc)
		assert.Equal(t, tc.route, c.Route.Name, tc)
	}
	c, _ := SelectRoute(rc, Request{Host: "b.example.com", Path: "/other"})
	assert.Equal(t, []string{"hdr"}, c.Skipped)

	// Pilot's tracing detours come first and are passed over silently:
	// they route with the same table.
	traced := RouteConfig{Name: "t", VirtualHosts: []VirtualHost{{Name: "any", Domains: []string{"*"}, Routes: []Route{
		{Name: "weft.trace-sampled", Match: RouteMatch{Prefix: &prefix, Headers: []struct {
			Name string `json:"name"`
		}{{Name: "traceparent"}}}},
		{Name: "weft.trace-random", Match: RouteMatch{Prefix: &prefix}},
		{Name: "default", Match: RouteMatch{Prefix: &prefix}},
	}}}}
	c, ok := SelectRoute(traced, Request{Host: "x", Path: "/"})
	assert.True(t, ok)
	assert.Equal(t, "default", c.Route.Name)
	assert.Empty(t, c.Skipped)
}

func TestSecrets(t *testing.T) {
	d := load(t, "curl-config-dump.json")
	require.Len(t, d.Secrets, 2)
	for _, s := range d.Secrets {
		certs, err := s.Certificates()
		require.NoError(t, err)
		require.Len(t, certs, 1)
		sum := Summarize(certs[0])
		switch s.Name {
		case "default":
			assert.Equal(t, "Cert Chain", s.Kind())
			assert.Equal(t, "spiffe://cluster.local/ns/explore/sa/curl", sum.SPIFFEID)
			assert.False(t, sum.IsCA)
		case "ROOTCA":
			assert.Equal(t, "CA", s.Kind())
			assert.True(t, sum.IsCA)
		}
		assert.Regexp(t, `^[0-9a-f]{2}(:[0-9a-f]{2})+$`, sum.Serial)
	}
}
