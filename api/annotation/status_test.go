package annotation

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func validStatus() SidecarStatus {
	return SidecarStatus{
		Version: StatusVersion, Image: "weft.local/sidecar:dev", Revision: DefaultRevision,
		ProxyUID: ProxyUID, ProxyGID: ProxyGID,
		OutboundPort: OutboundCapturePort, InboundPort: InboundCapturePort,
		IncludeInboundPorts:  CaptureAllInbound,
		ExcludeInboundPorts:  []uint16{15020, 15021, 15090},
		ExcludeOutboundPorts: []uint16{5432},
		ExcludeOutboundCIDRs: []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32")},
	}
}

func TestStatusRoundTrip(t *testing.T) {
	st := validStatus()
	const want = `{"v":1,"image":"weft.local/sidecar:dev","revision":"default",` +
		`"proxyUID":1337,"proxyGID":1337,"outboundPort":15001,"inboundPort":15006,` +
		`"includeInboundPorts":"*","excludeInboundPorts":[15020,15021,15090],` +
		`"excludeOutboundPorts":[5432],"excludeOutboundCIDRs":["169.254.169.254/32"]}`
	assert.Equal(t, want, st.String())
	got, err := ParseStatus(st.String())
	require.NoError(t, err)
	assert.Equal(t, st, got)

	all, ports, err := got.InboundCapture()
	require.NoError(t, err)
	assert.True(t, all)
	assert.Empty(t, ports)
}

func TestStatusOmitsEmptyOptionalLists(t *testing.T) {
	st := validStatus()
	st.ExcludeOutboundPorts, st.ExcludeOutboundCIDRs = nil, nil
	assert.NotContains(t, st.String(), "excludeOutbound")
	_, err := ParseStatus(st.String())
	require.NoError(t, err)
}

func TestParseStatusIgnoresUnknownFieldsOfSameVersion(t *testing.T) {
	st := validStatus()
	s := st.String()
	s = s[:len(s)-1] + `,"future":true}`
	got, err := ParseStatus(s)
	require.NoError(t, err)
	assert.Equal(t, st, got)
}

func TestParseStatusRejects(t *testing.T) {
	cases := map[string]struct {
		edit func(*SidecarStatus)
		want string
	}{
		"future version":        {func(s *SidecarStatus) { s.Version = 2 }, "unsupported version 2"},
		"no image":              {func(s *SidecarStatus) { s.Image = "" }, "image and revision"},
		"no uid":                {func(s *SidecarStatus) { s.ProxyUID = 0 }, "uid/gid"},
		"same capture ports":    {func(s *SidecarStatus) { s.InboundPort = s.OutboundPort }, "distinct"},
		"health not excluded":   {func(s *SidecarStatus) { s.ExcludeInboundPorts = []uint16{15020, 15090} }, "must contain 15021"},
		"port zero":             {func(s *SidecarStatus) { s.ExcludeOutboundPorts = []uint16{0} }, "port 0"},
		"bad include list":      {func(s *SidecarStatus) { s.IncludeInboundPorts = "80,http" }, "includeInboundPorts"},
		"zero-value CIDR entry": {func(s *SidecarStatus) { s.ExcludeOutboundCIDRs = []netip.Prefix{{}} }, "CIDR"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			st := validStatus()
			c.edit(&st)
			assert.ErrorContains(t, st.Validate(), c.want)
		})
	}
	_, err := ParseStatus(`{"v":1,`)
	assert.ErrorContains(t, err, "decode sidecar.weft.dev/status")
	_, err = ParseStatus(`{"v":1,"excludeOutboundCIDRs":["10.0.0.0/33"]}`)
	assert.Error(t, err)
}

func TestInboundCaptureList(t *testing.T) {
	st := validStatus()
	st.IncludeInboundPorts = "9080, 8080"
	all, ports, err := st.InboundCapture()
	require.NoError(t, err)
	assert.False(t, all)
	assert.Equal(t, []uint16{8080, 9080}, ports)
}

func TestParsePortList(t *testing.T) {
	got, err := ParsePortList(" 9090,8080,,9090 ")
	require.NoError(t, err)
	assert.Equal(t, []uint16{8080, 9090}, got)
	got, err = ParsePortList("")
	require.NoError(t, err)
	assert.Empty(t, got)
	for _, bad := range []string{"0", "65536", "http", "-1", "80-90"} {
		_, err := ParsePortList(bad)
		assert.ErrorContains(t, err, "invalid port", bad)
	}
}

func TestParseCIDRList(t *testing.T) {
	got, err := ParseCIDRList("10.1.2.3/8, 169.254.169.254,fd00::1, 10.0.0.0/8, ::ffff:1.2.3.4")
	require.NoError(t, err)
	want := []netip.Prefix{
		netip.MustParsePrefix("1.2.3.4/32"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("169.254.169.254/32"),
		netip.MustParsePrefix("fd00::1/128"),
	}
	assert.Equal(t, want, got)
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0/8"} {
		_, err := ParseCIDRList(bad)
		assert.ErrorContains(t, err, "invalid CIDR", bad)
	}
}

func TestAppProbersRoundTrip(t *testing.T) {
	p := AppProbers{
		AppProbePath("app", ReadinessProbe): {HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP}, TimeoutSeconds: 2},
		AppProbePath("app", LivenessProbe):  {TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
	}
	s := p.String()
	assert.Equal(t, `{"/app-health/app/livez":{"tcpSocket":{"port":8080}},`+
		`"/app-health/app/readyz":{"httpGet":{"path":"/ready","port":8080,"scheme":"HTTP"},"timeoutSeconds":2}}`, s)
	got, err := ParseAppProbers(s)
	require.NoError(t, err)
	assert.Equal(t, p, got)

	_, err = ParseAppProbers(`{"/x":{"tcpSocket":{"port":1}}}`)
	assert.ErrorContains(t, err, "not under /app-health/")
	_, err = ParseAppProbers(`{"/app-health/a/livez":{}}`)
	assert.ErrorContains(t, err, "exactly one")
	_, err = ParseAppProbers(`[`)
	assert.ErrorContains(t, err, "decode WEFT_APP_PROBERS")
}
