package healthcheck

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

func get(t *testing.T, h http.Handler, path string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: bad JSON %q: %v", path, rec.Body.String(), err)
	}
	return rec.Code, body
}

func TestNodeHealth(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	n := NewNode(time.Minute, clk)
	h := n.Handler()
	if code, _ := get(t, h, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("before the first sync: /healthz = %d, want 503", code)
	}
	n.Updated()
	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("after a sync: /healthz = %d, want 200", code)
	}
	n.Queued()
	clk.Step(30 * time.Second)
	if code, _ := get(t, h, "/livez"); code != http.StatusOK {
		t.Errorf("change pending 30s of a 1m timeout: /livez = %d, want 200", code)
	}
	clk.Step(time.Minute)
	if code, _ := get(t, h, "/livez"); code != http.StatusServiceUnavailable {
		t.Errorf("change pending past the timeout: /livez = %d, want 503", code)
	}
	n.Updated()
	n.SetEligible(false)
	code, body := get(t, h, "/healthz")
	if code != http.StatusServiceUnavailable || body["nodeEligible"] != false {
		t.Errorf("draining node: /healthz = %d %v, want 503 with nodeEligible false", code, body)
	}
	if code, _ := get(t, h, "/livez"); code != http.StatusOK {
		t.Errorf("draining node: /livez = %d, want 200 (the proxy itself is fine)", code)
	}
}

func TestServiceHealthPorts(t *testing.T) {
	n := NewNode(time.Minute, nil)
	n.Updated()
	s := NewServices(ServicesConfig{Node: n, Listen: func(uint16) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }})
	defer s.Close()
	name := types.NamespacedName{Namespace: "demo", Name: "lb"}
	if err := s.Sync(map[uint16]ServiceHealth{32000: {Name: name, LocalEndpoints: 2}}); err != nil {
		t.Fatal(err)
	}
	url := func() string {
		s.mu.Lock()
		defer s.mu.Unlock()
		return "http://" + s.servers[32000].addr + "/"
	}
	code, body := httpGet(t, url())
	if code != http.StatusOK || body["localEndpoints"] != float64(2) {
		t.Errorf("2 local endpoints: %d %v, want 200 with localEndpoints 2", code, body)
	}
	if err := s.Sync(map[uint16]ServiceHealth{32000: {Name: name, LocalEndpoints: 0}}); err != nil {
		t.Fatal(err)
	}
	if code, _ := httpGet(t, url()); code != http.StatusServiceUnavailable {
		t.Errorf("no local endpoints: %d, want 503", code)
	}
	if err := s.Sync(nil); err != nil {
		t.Fatal(err)
	}
	if len(s.servers) != 0 {
		t.Error("port of a removed Service still open")
	}
}

func httpGet(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := resp.Body.Close(); err != nil {
			t.Error(err)
		}
	}()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("bad JSON %q: %v", raw, err)
	}
	return resp.StatusCode, body
}
