package tracestore

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func serveStore(t *testing.T) (*Store, *httptest.Server) {
	t.Helper()
	s := newStore(t, Config{})
	srv := httptest.NewServer(NewHandler(s, logr.Discard()))
	t.Cleanup(srv.Close)
	return s, srv
}

// get returns the status and the decoded JSON body (as generic JSON, so
// the test sees the wire format rather than our Go types).
func get(t *testing.T, srv *httptest.Server, method, path string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	require.NoError(t, err)
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
	data, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	var body map[string]any
	require.NoError(t, json.Unmarshal(data, &body), "body %s", data)
	return res.StatusCode, body
}

func TestAPIListsTracesInTheContractShape(t *testing.T) {
	s, srv := serveStore(t)
	s.Add([]Span{
		span(1, 1, 0, "endpointslice.change", "weft-pilot", 0, 10),
		span(1, 2, 1, "weft-proxy.sync", "weft-proxy", 1, 5),
		span(2, 1, 0, "endpointslice.change", "weft-pilot", 100, 110),
	})
	code, body := get(t, srv, "GET", "/api/traces?name=endpointslice.change&service=weft-proxy&limit=5")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, map[string]any{"traces": []any{map[string]any{
		"traceId": tid(1), "rootName": "endpointslice.change",
		"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T10:00:00.01Z",
		"spanCount": 2.0, "services": []any{"weft-pilot", "weft-proxy"},
	}}}, body)

	code, body = get(t, srv, "GET", "/api/traces")
	require.Equal(t, http.StatusOK, code)
	traces := body["traces"].([]any)
	require.Len(t, traces, 2)
	assert.Equal(t, tid(2), traces[0].(map[string]any)["traceId"], "newest first")

	code, body = get(t, srv, "GET", "/api/traces?name=none")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, []any{}, body["traces"])
}

func TestAPIReturnsOneTrace(t *testing.T) {
	s, srv := serveStore(t)
	child := span(1, 2, 1, "pilot.push", "weft-pilot", 2, 9)
	child.Kind, child.Status = KindServer, Status{Code: StatusOK}
	child.Attributes = map[string]string{"weft.xds.status": "ACK"}
	child.Resource = map[string]string{"service.name": "weft-pilot"}
	s.Add([]Span{child, span(1, 1, 0, "endpointslice.change", "weft-pilot", 0, 10)})

	code, body := get(t, srv, "GET", "/api/traces/"+strings.ToUpper(tid(1)))
	require.Equal(t, http.StatusOK, code, "IDs are case-insensitive")
	assert.Equal(t, tid(1), body["traceId"])
	spans := body["spans"].([]any)
	require.Len(t, spans, 2)
	assert.Equal(t, map[string]any{
		"spanId": sid(1), "parentSpanId": "", "name": "endpointslice.change", "service": "weft-pilot",
		"kind": "INTERNAL", "start": "2026-12-01T10:00:00Z", "end": "2026-12-01T10:00:00.01Z",
		"status": map[string]any{"code": "UNSET", "message": ""}, "attributes": map[string]any{}, "resource": map[string]any{},
	}, spans[0], "sorted by start: the root first")
	assert.Equal(t, map[string]any{
		"spanId": sid(2), "parentSpanId": sid(1), "name": "pilot.push", "service": "weft-pilot",
		"kind": "SERVER", "start": "2026-12-01T10:00:00.002Z", "end": "2026-12-01T10:00:00.009Z",
		"status":     map[string]any{"code": "OK", "message": ""},
		"attributes": map[string]any{"weft.xds.status": "ACK"}, "resource": map[string]any{"service.name": "weft-pilot"},
	}, spans[1])
}

func TestAPIErrors(t *testing.T) {
	_, srv := serveStore(t)
	for _, tc := range []struct {
		method, path string
		code         int
		msg          string
	}{
		{"GET", "/api/traces/" + tid(7), 404, "trace " + tid(7) + " not found"},
		{"GET", "/api/traces/xyz", 400, `trace id "xyz" is not 32 hex digits`},
		{"GET", "/api/traces/" + tid(0), 400, "is not 32 hex digits"},
		{"GET", "/api/traces?limit=0", 400, `limit "0" is not a number from 1 to 1000`},
		{"GET", "/api/traces?limit=1001", 400, "is not a number from 1 to 1000"},
		{"GET", "/api/traces?limit=ten", 400, `limit "ten"`},
		{"GET", "/api/traces?nmae=x", 400, `unknown parameter "nmae"`},
		{"GET", "/api/traces?name=a&name=b", 400, `parameter "name" given 2 times`},
		{"GET", "/api/spans", 404, "no such endpoint: GET /api/spans"},
		{"POST", "/api/traces", 405, "POST /api/traces: only GET"},
		{"DELETE", "/api/traces/" + tid(1), 405, "only GET"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			code, body := get(t, srv, tc.method, tc.path)
			assert.Equal(t, tc.code, code)
			assert.Contains(t, body["error"], tc.msg)
		})
	}
}

func TestAPIHealthzReportsStats(t *testing.T) {
	s, srv := serveStore(t)
	s.Add([]Span{span(1, 1, 0, "a", "x", 0, 1), {TraceID: "bad"}})
	code, body := get(t, srv, "GET", "/healthz")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, map[string]any{"traces": 1.0, "spans": 1.0, "evictedTraces": 0.0, "droppedSpans": 0.0, "rejectedSpans": 1.0}, body)
}
