package agent

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/api/annotation"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func portOf(t *testing.T, rawURL string) intstr.IntOrString {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	p, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	return intstr.FromInt32(int32(p))
}

// TestAppHealthProxiesOriginalProbes runs the rewritten probes of a pod
// against fake apps on 127.0.0.1, as the kubelet would reach them through
// the agent.
func TestAppHealthProxiesOriginalProbes(t *testing.T) {
	var (
		mu                         sync.Mutex
		gotHeader, gotUA, gotQuery string
	)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotHeader, gotUA, gotQuery = r.Header.Get("X-Probe"), r.UserAgent(), r.URL.RawQuery
		mu.Unlock()
		switch r.URL.Path {
		case "/livez":
			w.Write([]byte("alive"))
		case "/ready":
			http.Error(w, "warming up", http.StatusServiceUnavailable)
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/slow":
			<-r.Context().Done() // hangs until the agent gives up
		}
	}))
	defer app.Close()
	tlsApp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer tlsApp.Close()
	tcpApp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer tcpApp.Close()

	get := func(port intstr.IntOrString, path string, scheme corev1.URIScheme, headers ...corev1.HTTPHeader) annotation.AppProbe {
		return annotation.AppProbe{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port, Scheme: scheme, HTTPHeaders: headers}}
	}
	probers := annotation.AppProbers{
		annotation.AppProbePath("api", annotation.LivenessProbe): get(portOf(t, app.URL), "/livez?deep=1", corev1.URISchemeHTTP,
			corev1.HTTPHeader{Name: "X-Probe", Value: "kubelet"}),
		annotation.AppProbePath("api", annotation.ReadinessProbe): get(portOf(t, app.URL), "/ready", corev1.URISchemeHTTP),
		annotation.AppProbePath("api", annotation.StartupProbe):   get(portOf(t, app.URL), "/moved", ""),
		annotation.AppProbePath("tls", annotation.ReadinessProbe): get(portOf(t, tlsApp.URL), "/", corev1.URISchemeHTTPS),
		annotation.AppProbePath("tcp", annotation.LivenessProbe): {TCPSocket: &corev1.TCPSocketAction{
			Port: intstr.FromInt32(int32(tcpApp.Addr().(*net.TCPAddr).Port)),
		}},
		annotation.AppProbePath("down", annotation.LivenessProbe): {TCPSocket: &corev1.TCPSocketAction{
			Port: intstr.FromInt32(int32(closedPort(t))),
		}},
		annotation.AppProbePath("down", annotation.ReadinessProbe): get(intstr.FromInt32(int32(closedPort(t))), "/", corev1.URISchemeHTTP),
		annotation.AppProbePath("slow", annotation.LivenessProbe): {TimeoutSeconds: 1, HTTPGet: &corev1.HTTPGetAction{
			Path: "/slow", Port: portOf(t, app.URL), Scheme: corev1.URISchemeHTTP,
		}},
		annotation.AppProbePath("named", annotation.LivenessProbe): get(intstr.FromString("http"), "/", corev1.URISchemeHTTP),
	}
	srv := httptest.NewServer(newStatusHandler(closedChan(), nil, probers, nil))
	defer srv.Close()

	for _, tc := range []struct {
		path     string
		code     int
		body     string
		wantUA   string
		wantHdr  string
		wantQuer string
	}{
		{"/app-health/api/livez", 200, "alive", "kube-probe/1.37", "kubelet", "deep=1"},
		{"/app-health/api/readyz", 503, "warming up\n", "kube-probe/1.37", "", ""},
		{"/app-health/api/startupz", 302, "", "", "", ""},
		{"/app-health/tls/readyz", 204, "", "", "", ""},
		{"/app-health/tcp/livez", 200, "ok\n", "", "", ""},
		{"/app-health/down/livez", 503, "", "", "", ""},
		{"/app-health/down/readyz", 503, "", "", "", ""},
		{"/app-health/slow/livez", 503, "", "", "", ""},
		{"/app-health/named/livez", 500, "probe port \"http\" is not a port number\n", "", "", ""},
		{"/app-health/api/unknown", 404, "404 page not found\n", "", "", ""},
		{"/app-health/other/livez", 404, "404 page not found\n", "", "", ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			mu.Lock()
			gotHeader, gotUA, gotQuery = "", "", ""
			mu.Unlock()
			req, err := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			require.NoError(t, err)
			req.Header.Set("User-Agent", "kube-probe/1.37")
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, tc.code, resp.StatusCode, string(body))
			if tc.body != "" {
				assert.Equal(t, tc.body, string(body))
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.wantUA != "" {
				assert.Equal(t, tc.wantUA, gotUA, "the kubelet's User-Agent reaches the app")
				assert.Equal(t, tc.wantHdr, gotHeader)
				assert.Equal(t, tc.wantQuer, gotQuery)
			}
		})
	}
}
