package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// envoyAdmin is the part of Envoy's admin API
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/operations/admin) the
// agent uses. It listens on 127.0.0.1 only.
type envoyAdmin struct {
	base   string
	client *http.Client
}

func newEnvoyAdmin(port uint32) *envoyAdmin {
	return &envoyAdmin{
		base: "http://" + net.JoinHostPort("127.0.0.1", strconv.FormatUint(uint64(port), 10)),
		// Loopback only: never through an HTTP(S)_PROXY from the
		// environment.
		client: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConns: 2}},
	}
}

// ready returns Envoy's server state: LIVE (answered with 200) or
// PRE_INITIALIZING, INITIALIZING, DRAINING (503).
func (a *envoyAdmin) ready(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/ready", nil)
	if err != nil {
		return "", fmt.Errorf("envoy admin ready: %w", err)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("envoy admin ready: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return "", fmt.Errorf("envoy admin ready: %w", err)
	}
	return strings.TrimSpace(string(body)), nil
}

// drainListeners starts a graceful drain of every listener: Envoy keeps
// accepting for the drain time but asks clients to go away (HTTP/1.1
// "Connection: close", HTTP/2 GOAWAY), then stops listening.
func (a *envoyAdmin) drainListeners(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/drain_listeners?graceful", nil)
	if err != nil {
		return fmt.Errorf("envoy admin drain: %w", err)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("envoy admin drain: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
		if err != nil {
			return fmt.Errorf("envoy admin drain: %s: read body: %w", resp.Status, err)
		}
		return fmt.Errorf("envoy admin drain: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
