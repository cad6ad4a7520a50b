package dashboard

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The .prom files under testdata are real scrapes of the local cluster's
// sidecars (curl → httpbin in namespace dash-helper) with StatsFilter, 10
// seconds apart: 36 requests in between, 6 of them 500s.

func readProm(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func TestParseText(t *testing.T) {
	text := []byte(`# TYPE a counter
a{x="1",y="with \"quotes\", a \\ and\na newline"} 3
a 4 1700000000000
a_total{x="2"} 100
b{le="+Inf"} +Inf
`)
	got, err := ParseText(text, func(n string) bool { return n == "a" || n == "b" })
	require.NoError(t, err)
	require.Len(t, got, 3, "a_total is another metric")
	assert.Equal(t, Sample{Name: "a", Labels: map[string]string{"x": "1", "y": "with \"quotes\", a \\ and\na newline"}, Value: 3}, got[0])
	assert.Equal(t, Sample{Name: "a", Labels: map[string]string{}, Value: 4}, got[1])
	assert.True(t, math.IsInf(got[2].Value, 1))

	for _, bad := range []string{`a{x="1"`, `a{x=1} 2`, `a{x="1"} two`, `a{x="1"} 1 2 3`, `a{x="unterminated} 1`} {
		_, err := ParseText([]byte("# ok\n"+bad+"\n"), func(string) bool { return true })
		assert.ErrorContains(t, err, "stats line 2: ", bad)
	}
	// Lines of metrics not asked for are not even parsed.
	_, err = ParseText([]byte("other{broken 1\n"), func(n string) bool { return n == "a" })
	assert.NoError(t, err)
}

func TestParsePodStatsReal(t *testing.T) {
	curl, err := ParsePodStats(readProm(t, "curl-2.prom"))
	require.NoError(t, err)
	assert.Equal(t, "curl", curl.Workload)
	assert.Equal(t, "dash-helper", curl.Namespace)
	require.Len(t, curl.Outbound, 1, "only Services with requests: xDS, SDS and the agent are not Services")
	c := curl.Outbound[Service{Namespace: "dash-helper", Name: "httpbin"}]
	require.NotNil(t, c)
	assert.Equal(t, 96.0, c.Requests, "80 200s + 6 500s + 10 503s")
	assert.Equal(t, 16.0, c.Errors)
	require.NotEmpty(t, c.Buckets)
	assert.True(t, math.IsInf(c.Buckets[len(c.Buckets)-1].LE, 1), "buckets sorted, +Inf last")
	assert.Zero(t, curl.Inbound.Requests, "nobody calls curl")

	httpbin, err := ParsePodStats(readProm(t, "httpbin-2.prom"))
	require.NoError(t, err)
	assert.Equal(t, "httpbin", httpbin.Workload)
	assert.Empty(t, httpbin.Outbound)
	assert.Equal(t, 31.0, httpbin.Inbound.Requests, "one of three httpbin pods")
	assert.Equal(t, 2.0, httpbin.Inbound.Errors)
}

func TestCountsSubAndQuantile(t *testing.T) {
	before := Counts{Requests: 10, Errors: 1, Buckets: []Bucket{{1, 5}, {10, 9}, {inf, 10}}}
	after := Counts{Requests: 110, Errors: 6, Buckets: []Bucket{{1, 55}, {10, 99}, {inf, 110}}}
	d := after.Sub(before)
	assert.Equal(t, Counts{Requests: 100, Errors: 5, Buckets: []Bucket{{1, 50}, {10, 90}, {inf, 100}}}, d)

	q, ok := d.Quantile(0.5)
	require.True(t, ok)
	assert.InDelta(t, 1.0, q, 1e-9, "the median is the top of the first bucket")
	q, _ = d.Quantile(0.7)
	assert.InDelta(t, 1+9*(20.0/40), q, 1e-9, "interpolated inside (1, 10]")
	q, _ = d.Quantile(0.99)
	assert.Equal(t, 10.0, q, "in the +Inf bucket: the highest finite bound")

	restarted := Counts{Requests: 3, Buckets: []Bucket{{1, 3}, {10, 3}, {inf, 3}}}
	assert.Equal(t, restarted, restarted.Sub(before), "a counter that went down was reset")

	_, ok = Counts{}.Quantile(0.99)
	assert.False(t, ok)
	_, ok = Counts{Buckets: []Bucket{{1, 0}, {inf, 0}}}.Quantile(0.99)
	assert.False(t, ok)

	sum := Counts{Requests: 1, Buckets: []Bucket{{1, 1}, {inf, 1}}}.Add(Counts{Requests: 2, Buckets: []Bucket{{5, 2}, {inf, 2}}})
	assert.Equal(t, Counts{Requests: 3, Buckets: []Bucket{{1, 1}, {5, 2}, {inf, 3}}}, sum)
}

// Real scrapes of a bookinfo reviews pod (with StatsFilter) after 60 and
// 90 productpage requests: the request metrics its sidecar recorded name
// the Service productpage addressed.
func TestParsePodStatsServed(t *testing.T) {
	v1, err := ParsePodStats(readProm(t, "reviews-v1-2.prom"))
	require.NoError(t, err)
	assert.Equal(t, "reviews-v1", v1.Workload, "the cluster stats' tags, not the request metrics', name the sidecar")
	require.Len(t, v1.Served, 1)
	c := v1.Served[Service{Namespace: "dash-bookinfo", Name: "reviews"}]
	require.NotNil(t, c, "%v", v1.Served)
	assert.Equal(t, 35.0, c.Requests)
	assert.Zero(t, c.Errors)
	require.NotEmpty(t, c.Buckets)
	assert.Equal(t, Bucket{LE: inf, Count: 35}, c.Buckets[len(c.Buckets)-1])
	assert.Equal(t, 35.0, v1.Inbound.Requests, "the inbound cluster stats count the same requests")

	// Sidecars whose namespace records no request metrics serve nothing
	// by Service.
	curl, err := ParsePodStats(readProm(t, "curl-2.prom"))
	require.NoError(t, err)
	assert.Empty(t, curl.Served)
}

func TestServiceOfHost(t *testing.T) {
	for host, want := range map[string]Service{
		"reviews.dash-bookinfo.svc.cluster.local": {Namespace: "dash-bookinfo", Name: "reviews"},
		"a.b.svc.example.org":                     {Namespace: "b", Name: "a"},
	} {
		got, ok := serviceOfHost(host)
		assert.True(t, ok, host)
		assert.Equal(t, want, got, host)
	}
	for _, host := range []string{"unknown", "", "a.b", "a.b.cluster.local", ".b.svc.x"} {
		_, ok := serviceOfHost(host)
		assert.False(t, ok, host)
	}
}
