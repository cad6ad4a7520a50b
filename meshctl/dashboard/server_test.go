package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/meshctl/internal/fakestore"
	"github.com/weftmesh/weft/meshctl/internal/golden"
	"github.com/weftmesh/weft/meshctl/trace"
)

// fakeStore serves the fixture traces over HTTP, as the real store does.
func fakeStore(t *testing.T) (*fakestore.Store, trace.Store) {
	t.Helper()
	st := fakestore.New(fakestore.Fixture()...)
	srv := httptest.NewServer(st)
	t.Cleanup(srv.Close)
	return st, &trace.Client{BaseURL: srv.URL}
}

// dashboard is a refreshed server over the fake bookinfo and store.
func dashboard(t *testing.T) (*Server, *fakestore.Store) {
	t.Helper()
	st, store := fakeStore(t)
	clk := &clock{t: t0}
	s := New(Config{Source: &fakeSource{}, Traces: store, Namespace: "bookinfo", Now: clk.Now})
	s.Refresh(context.Background())
	clk.Add(5 * 1e9)
	s.Refresh(context.Background())
	return s, st
}

func get(t *testing.T, h http.Handler, method, target, host string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.Host = "127.0.0.1:15030"
	if host != "" {
		req.Host = host
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return string(b)
}

func TestHandlerGraphAndTraces(t *testing.T) {
	s, _ := dashboard(t)
	h := s.Handler()

	r := get(t, h, http.MethodGet, "/api/graph", "127.0.0.1:15030")
	require.Equal(t, http.StatusOK, r.StatusCode)
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	var g struct {
		Graph
		Refresh float64 `json:"refreshSeconds"`
	}
	require.NoError(t, json.Unmarshal([]byte(body(t, r)), &g))
	assert.Equal(t, 5.0, g.Refresh)
	assert.Len(t, g.Nodes, 10)
	assert.Equal(t, 5.0, g.Window)

	r = get(t, h, http.MethodGet, "/api/traces", "localhost:15030")
	require.Equal(t, http.StatusOK, r.StatusCode)
	var tr Traces
	require.NoError(t, json.Unmarshal([]byte(body(t, r)), &tr))
	assert.Empty(t, tr.Error)
	require.Len(t, tr.Traces, 1, "only traces whose root is endpointslice.change")
	v := tr.Traces[0]
	assert.Equal(t, "EndpointSlice shop/httpbin-7xq2k of Service httpbin (resourceVersion 48213)", v.Title)
	assert.Equal(t, "3 nodes programmed in max 412ms, 4 proxies ACKed in max 1.2s, 1 NACKed", v.Sentence)
	b, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	golden.Check(t, "timeline-view.json", append(b, '\n'))
	for _, row := range v.Rows {
		assert.GreaterOrEqual(t, row.Left, 0.0)
		assert.LessOrEqual(t, row.Left+row.Width, 1.0+1e-4)
		assert.GreaterOrEqual(t, row.Width, minBarWidth)
	}
}

func TestHandlerPageAndGuards(t *testing.T) {
	s, _ := dashboard(t)
	h := s.Handler()
	r := get(t, h, http.MethodGet, "/", "")
	require.Equal(t, http.StatusOK, r.StatusCode)
	page := body(t, r)
	assert.Contains(t, page, `<script src="app.js"></script>`)
	assert.NotContains(t, page, "http://", "nothing is loaded from outside")
	assert.NotContains(t, page, "https://")
	assert.Contains(t, r.Header.Get("Content-Security-Policy"), "default-src 'self'")
	for _, f := range []string{"/app.js", "/style.css"} {
		r := get(t, h, http.MethodGet, f, "")
		assert.Equal(t, http.StatusOK, r.StatusCode, f)
		assert.NotContains(t, body(t, r), "https://", f)
	}

	r = get(t, h, http.MethodGet, "/api/graph", "evil.example:15030")
	assert.Equal(t, http.StatusForbidden, r.StatusCode, "DNS rebinding: a page of another origin that resolves to 127.0.0.1")
	r = get(t, h, http.MethodGet, "/api/graph", "[::1]:15030")
	assert.Equal(t, http.StatusOK, r.StatusCode)
	r = get(t, h, http.MethodPost, "/api/graph", "")
	assert.Equal(t, http.StatusMethodNotAllowed, r.StatusCode)
}

func TestRefreshErrors(t *testing.T) {
	st, store := fakeStore(t)
	src := &fakeSource{FailPod: "ratings-v1-0a1b2c3d4-ghjkl"}
	s := New(Config{Source: src, Traces: store})
	s.Refresh(context.Background())
	assert.Equal(t, []string{"1 of 6 sidecars could not be read: bookinfo/ratings-v1-0a1b2c3d4-ghjkl: read stats: connection refused"}, s.graph.Warnings)

	st.Status = http.StatusInternalServerError
	src.PodsErr = errors.New("permission denied: pods is forbidden")
	s.Refresh(context.Background())
	assert.Equal(t, []string{"permission denied: pods is forbidden"}, s.graph.Warnings)
	assert.Equal(t, "trace store answered 500 Internal Server Error: fake store failure", s.traces.Error)
	assert.Empty(t, s.traces.Traces)

	none := New(Config{Source: &fakeSource{}, Namespace: "empty"})
	none.Refresh(context.Background())
	assert.Equal(t, "no trace store", none.traces.Error)
	assert.Empty(t, none.graph.Nodes)
	assert.True(t, strings.HasPrefix(none.graph.Warnings[0], "no meshed pods in namespace empty"))
}
