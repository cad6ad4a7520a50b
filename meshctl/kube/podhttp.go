package kube

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	streamhttp "k8s.io/streaming/pkg/httpstream"
)

// EnvoyAdminPort is the sidecar's Envoy admin API, bound to 127.0.0.1 in
// the pod (DESIGN.md), so only a port-forward (which connects from inside
// the pod's network namespace) reaches it.
const EnvoyAdminPort = 15000

// EnvoyAdmin GETs a path of a pod's Envoy admin API (e.g. "/config_dump").
type EnvoyAdmin interface {
	Get(ctx context.Context, namespace, pod, path string) ([]byte, error)
}

// PodHTTP GETs a path of a pod's HTTP port through the API server.
type PodHTTP interface {
	Get(ctx context.Context, namespace, pod string, port int, path string) ([]byte, error)
}

// proxyHTTP uses the pods/proxy subresource: the API server connects to
// the pod IP, so it works for ports bound to the pod's address (pilot's
// :15014, weft-cni-node's :9657), not for loopback-only ones.
type proxyHTTP struct{ kube kubernetes.Interface }

func (p *proxyHTTP) Get(ctx context.Context, namespace, pod string, port int, path string) ([]byte, error) {
	path, query, _ := strings.Cut(path, "?")
	params := map[string]string{}
	for _, kv := range strings.Split(query, "&") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			params[k] = v
		} else if kv != "" {
			params[kv] = ""
		}
	}
	body, err := p.kube.CoreV1().Pods(namespace).ProxyGet("http", pod, strconv.Itoa(port), path, params).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("GET %s on pod %s/%s port %d: %w", path, namespace, pod, port, err)
	}
	return body, nil
}

// PortForwarder opens a tunnel from a local loopback port to a pod's port,
// as `kubectl port-forward` does, for what only listens inside the pod's
// network namespace or speaks more than one request (the trace store).
type PortForwarder interface {
	// Forward returns the local port; stop closes the tunnel.
	Forward(ctx context.Context, namespace, pod string, port int) (local uint16, stop func(), err error)
}

// portForwardAdmin forwards a local loopback port to the pod's 15000 for
// the duration of one request.
type portForwardAdmin struct{ fw PortForwarder }

func (a *portForwardAdmin) Get(ctx context.Context, namespace, pod, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	port, stop, err := a.fw.Forward(ctx, namespace, pod, EnvoyAdminPort)
	if err != nil {
		return nil, err
	}
	defer stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("envoy admin of %s/%s: %w", namespace, pod, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read envoy admin %s of %s/%s: %w", path, namespace, pod, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("envoy admin %s of %s/%s: %s: %s", path, namespace, pod, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// spdyForwarder tunnels through the API server's pods/portforward
// subresource: WebSocket first, SPDY as the fallback.
type spdyForwarder struct {
	config *rest.Config
	kube   kubernetes.Interface
}

func (a *spdyForwarder) Forward(ctx context.Context, namespace, pod string, remote int) (uint16, func(), error) {
	u := a.kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(a.config)
	if err != nil {
		return 0, nil, fmt.Errorf("port-forward transport: %w", err)
	}
	dialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	tunnel, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, a.config)
	if err != nil {
		return 0, nil, fmt.Errorf("port-forward dialer: %w", err)
	}
	dialer = portforward.NewFallbackDialerForStreaming(tunnel, dialer, func(err error) bool {
		return streamhttp.IsUpgradeFailure(err) || streamhttp.IsHTTPSProxyError(err)
	})
	stopCh, ready := make(chan struct{}), make(chan struct{})
	var errOut strings.Builder
	fw, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(remote)}, stopCh, ready, io.Discard, &errOut)
	if err != nil {
		return 0, nil, fmt.Errorf("port-forward to %s/%s: %w", namespace, pod, err)
	}
	failed := make(chan error, 1)
	go func() { failed <- fw.ForwardPorts() }()
	var once sync.Once
	stop := func() { once.Do(func() { close(stopCh) }) }
	select {
	case <-ready:
	case err := <-failed:
		return 0, nil, fmt.Errorf("port-forward to %s/%s:%d: %w", namespace, pod, remote, Humanize(err, a.config.Host))
	case <-ctx.Done():
		stop()
		return 0, nil, fmt.Errorf("port-forward to %s/%s:%d: %w", namespace, pod, remote, ctx.Err())
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		stop()
		return 0, nil, fmt.Errorf("port-forward to %s/%s: no local port: %v", namespace, pod, err)
	}
	return ports[0].Local, stop, nil
}
