package tracestore

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
)

// The query API (JSON over HTTP, served on :16686 in the collector pod):
//
//	GET /api/traces?name=<root span name>&service=<service.name>&limit=N
//	    → ListResponse, newest first; limit defaults to DefaultLimit
//	GET /api/traces/<trace id> → TraceResponse, or 404
//	GET /healthz → Stats
//
// Errors are {"error": "..."} with 400 for bad parameters and 404 for
// unknown traces and paths. meshctl and the e2e suite depend on these
// shapes: change them only compatibly.
const (
	DefaultLimit = 20
	MaxLimit     = 1000
)

// ListResponse is the body of GET /api/traces.
type ListResponse struct {
	Traces []Summary `json:"traces"`
}

// TraceResponse is the body of GET /api/traces/<id>.
type TraceResponse struct {
	TraceID string `json:"traceId"`
	Spans   []Span `json:"spans"`
}

// ErrorResponse is the body of every error.
type ErrorResponse struct {
	Error string `json:"error"`
}

// listParams are the query parameters GET /api/traces accepts.
var listParams = map[string]bool{"name": true, "service": true, "limit": true}

// NewHandler serves the query API over s; log gets the responses that
// could not be written.
func NewHandler(s *Store, log logr.Logger) http.Handler {
	writeJSON := func(w http.ResponseWriter, code int, body any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		if err := json.NewEncoder(w).Encode(body); err != nil {
			log.V(1).Info("write response", "error", err.Error())
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/traces", func(w http.ResponseWriter, r *http.Request) {
		q, err := parseQuery(r.URL.Query())
		if err != nil {
			writeJSON(w, http.StatusBadRequest, ErrorResponse{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, ListResponse{Traces: s.Traces(q)})
	})
	mux.HandleFunc("GET /api/traces/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := strings.ToLower(r.PathValue("id"))
		if !ValidTraceID(id) {
			writeJSON(w, http.StatusBadRequest, ErrorResponse{fmt.Sprintf("trace id %q is not 32 hex digits", r.PathValue("id"))})
			return
		}
		spans, ok := s.Trace(id)
		if !ok {
			writeJSON(w, http.StatusNotFound, ErrorResponse{fmt.Sprintf("trace %s not found (never received, or evicted)", id)})
			return
		}
		writeJSON(w, http.StatusOK, TraceResponse{TraceID: id, Spans: spans})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && (r.URL.Path == "/healthz" || strings.HasPrefix(r.URL.Path, "/api/traces")) {
			writeJSON(w, http.StatusMethodNotAllowed, ErrorResponse{fmt.Sprintf("%s %s: only GET", r.Method, r.URL.Path)})
			return
		}
		writeJSON(w, http.StatusNotFound, ErrorResponse{fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

// parseQuery checks GET /api/traces's parameters: only name, service and
// limit, each at most once, limit in 1..MaxLimit.
func parseQuery(v url.Values) (Query, error) {
	for k, vals := range v {
		if !listParams[k] {
			return Query{}, fmt.Errorf("unknown parameter %q (want name, service, limit)", k)
		}
		if len(vals) > 1 {
			return Query{}, fmt.Errorf("parameter %q given %d times", k, len(vals))
		}
	}
	q := Query{Name: v.Get("name"), Service: v.Get("service"), Limit: DefaultLimit}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxLimit {
			return Query{}, fmt.Errorf("limit %q is not a number from 1 to %d", l, MaxLimit)
		}
		q.Limit = n
	}
	return q, nil
}
