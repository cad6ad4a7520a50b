package fakekube

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
)

// Forwards answers port-forwards: "namespace/pod:port" tunnels to a local
// port where a test server (httptest) listens, so a command that forwards
// to a pod talks to the fake. Open counts tunnels not yet stopped.
type Forwards struct {
	mu    sync.Mutex
	ports map[string]uint16
	errs  map[string]error
	Calls []string
	Open  int
}

// Set makes key forward to the port of serverURL (http://127.0.0.1:port).
func (f *Forwards) Set(key, serverURL string) error {
	u, err := url.Parse(serverURL)
	if err != nil {
		return fmt.Errorf("fake forward %s: %w", key, err)
	}
	_, p, err := net.SplitHostPort(u.Host)
	if err != nil {
		return fmt.Errorf("fake forward %s: %w", key, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return fmt.Errorf("fake forward %s: %w", key, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ports == nil {
		f.ports = map[string]uint16{}
	}
	f.ports[key] = uint16(port)
	return nil
}

// Fail makes a port-forward to key fail with err.
func (f *Forwards) Fail(key string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errs == nil {
		f.errs = map[string]error{}
	}
	f.errs[key] = err
}

// Forward implements kube.PortForwarder.
func (f *Forwards) Forward(_ context.Context, namespace, pod string, port int) (uint16, func(), error) {
	key := fmt.Sprintf("%s/%s:%d", namespace, pod, port)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls = append(f.Calls, key)
	if err, ok := f.errs[key]; ok {
		return 0, nil, err
	}
	local, ok := f.ports[key]
	if !ok {
		return 0, nil, fmt.Errorf("fake: no port-forward for %s", key)
	}
	f.Open++
	var once sync.Once
	return local, func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.Open--
		})
	}, nil
}
