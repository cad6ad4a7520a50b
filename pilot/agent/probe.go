package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/weftmesh/weft/api/annotation"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// appProbeHost is where the agent probes the app. The agent runs as the
// proxy UID, which weft-redirect exempts from capture, so the probe
// reaches the app directly rather than Envoy.
const appProbeHost = "127.0.0.1"

// maxProbeBody is how much of the app's answer is passed on; the kubelet
// reads no more than 10 KiB of a probe response either.
const maxProbeBody = 10 << 10

// appProber runs the pod's original HTTP and TCP probes (from
// annotation.AppProbersEnv) on behalf of the kubelet, as Istio's
// pilot-agent does: with STRICT mTLS Envoy would refuse the kubelet's
// plain-text probes, so the injector points them at the agent instead.
type appProber struct {
	probers annotation.AppProbers
	client  *http.Client
}

func newAppProber(probers annotation.AppProbers) *appProber {
	return &appProber{
		probers: probers,
		client: &http.Client{
			Transport: &http.Transport{
				Proxy: nil,
				// The kubelet does not verify HTTPS probe targets either.
				TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // kubelet semantics
				DisableKeepAlives: true,
			},
			// The kubelet judges a redirect's status itself (3xx is
			// success); pass it on rather than follow it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// ServeHTTP answers /app-health/<container>/<livez|readyz|startupz>: the
// app's own status code and (truncated) body for HTTP probes, 200 for a
// TCP probe that connects, 503 when the app cannot be reached, 404 for a
// path the pod has no probe for.
func (p *appProber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	probe, ok := p.probers[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	timeout := time.Second // the kubelet's default timeoutSeconds
	if probe.TimeoutSeconds > 0 {
		timeout = time.Duration(probe.TimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	log := logr.FromContextOrDiscard(ctx).WithName("app-probe").WithValues("path", r.URL.Path)
	switch {
	case probe.HTTPGet != nil:
		p.proxyHTTP(ctx, log, w, r, probe.HTTPGet)
	case probe.TCPSocket != nil:
		if err := probeTCP(ctx, probe.TCPSocket); err != nil {
			log.V(1).Info("tcp probe failed", "error", err.Error())
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeText(log, w, http.StatusOK, "ok\n")
	default:
		http.Error(w, "probe has no httpGet or tcpSocket", http.StatusInternalServerError)
	}
}

func (p *appProber) proxyHTTP(ctx context.Context, log logr.Logger, w http.ResponseWriter, in *http.Request, get *corev1.HTTPGetAction) {
	req, err := appRequest(ctx, get, in.Header.Get("User-Agent"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	resp, err := p.client.Do(req)
	if err != nil {
		log.V(1).Info("http probe failed", "error", err.Error())
		http.Error(w, fmt.Sprintf("probe %s: %v", req.URL, err), http.StatusServiceUnavailable)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	if err != nil {
		// The status line is what the kubelet judges; keep it.
		log.V(1).Info("read probe body", "error", err.Error())
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := w.Write(body); err != nil {
		log.V(1).Info("write probe answer", "error", err.Error())
	}
}

// appRequest builds the request the kubelet would have sent: scheme, path
// (with query) and headers of the probe; Host is 127.0.0.1 unless the
// probe names one. The kubelet's User-Agent (kube-probe/<version>) is
// passed on unless the probe sets its own.
func appRequest(ctx context.Context, get *corev1.HTTPGetAction, userAgent string) (*http.Request, error) {
	port, err := probePort(get.Port)
	if err != nil {
		return nil, err
	}
	host := get.Host
	if host == "" {
		host = appProbeHost
	}
	u, err := url.Parse(get.Path)
	if err != nil {
		u = &url.URL{Path: get.Path}
	}
	u.Scheme = strings.ToLower(string(get.Scheme))
	if u.Scheme == "" {
		u.Scheme = "http"
	}
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("probe request: %w", err)
	}
	for _, h := range get.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	if req.Header.Get("User-Agent") == "" && userAgent != "" {
		req.Header.Set("User-Agent", userAgent)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "*/*")
	}
	return req, nil
}

func probeTCP(ctx context.Context, tcp *corev1.TCPSocketAction) error {
	port, err := probePort(tcp.Port)
	if err != nil {
		return err
	}
	host := tcp.Host
	if host == "" {
		host = appProbeHost
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("tcp probe: %w", err)
	}
	if err := conn.Close(); err != nil {
		return fmt.Errorf("tcp probe: close: %w", err)
	}
	return nil
}

// probePort is the numeric port; the injector resolves named ports, so a
// name here means a malformed WEFT_APP_PROBERS.
func probePort(p intstr.IntOrString) (int, error) {
	if p.Type != intstr.Int || p.IntVal <= 0 || p.IntVal > 65535 {
		return 0, fmt.Errorf("probe port %q is not a port number", p.String())
	}
	return int(p.IntVal), nil
}

func writeText(log logr.Logger, w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	if _, err := io.WriteString(w, body); err != nil {
		log.V(1).Info("write answer", "error", err.Error())
	}
}
