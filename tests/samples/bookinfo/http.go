package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// propagated are the request headers productpage and reviews copy onto their
// upstream calls: end-user, so header-based routes match on every hop, and
// the trace context (Envoy's x-request-id, W3C Trace Context, B3 in single-
// and multi-header form, OpenTracing), so a trace spans the whole chain.
// Authorization goes along too, as in Istio's sample, for JWT-based policies.
var propagated = []string{
	"End-User", "X-Request-Id", "Traceparent", "Tracestate",
	"B3", "X-B3-Traceid", "X-B3-Spanid", "X-B3-Parentspanid", "X-B3-Sampled", "X-B3-Flags",
	"X-Ot-Span-Context", "Authorization",
}

// forwardHeaders returns the propagated headers of an incoming request.
func forwardHeaders(in http.Header) http.Header {
	out := http.Header{}
	for _, k := range propagated {
		for _, v := range in.Values(k) {
			out.Add(k, v)
		}
	}
	return out
}

// upstream is one service an app calls: its base URL, how long to wait and
// the client to use (shared, so connections are reused).
type upstream struct {
	base    string
	timeout time.Duration
	client  *http.Client
}

// maxBody bounds what an app reads from an upstream.
const maxBody = 1 << 20

// get fetches base+path with hdr and decodes the JSON answer into out. The
// error says why, in words a test can match: "timed out after 3s",
// "status 503: fault filter abort", or the dial error.
func (u upstream) get(ctx context.Context, path string, hdr http.Header, out any) error {
	target := strings.TrimRight(u.base, "/") + path
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("build request %s: %w", target, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return u.fail(target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return u.fail(target, fmt.Errorf("read body: %w", err))
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: status %d: %s", target, resp.StatusCode, firstLine(body))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: decode: %w", target, err)
	}
	return nil
}

// fail words a transport error: a deadline becomes "timed out after <d>",
// and net/url's `Get "<url>":` prefix is dropped (we add our own).
func (u upstream) fail(target string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("GET %s: timed out after %s: %w", target, u.timeout, context.DeadlineExceeded)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("GET %s: %w", target, err)
}

// firstLine is a short, single-line excerpt of an error body.
func firstLine(body []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

// newClient is the HTTP client every app uses upstream. Per-call timeouts
// come from contexts; the idle pool is large enough for concurrent load tests
// (circuit breaking) without opening a connection per request.
func newClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: t}
}

// writeJSON answers with v as JSON. Write errors (a client that went away)
// are recorded by logRequests and show up in the request's log line.
func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("encode response: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n')) // recorded by logRequests
}

// pathID parses the {id} path segment: a non-negative integer.
func pathID(r *http.Request) (int, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 0 {
		return 0, fmt.Errorf("id %q: want a non-negative integer", r.PathValue("id"))
	}
	return id, nil
}

// badRequest answers 400 with the error as JSON.
func badRequest(w http.ResponseWriter, err error) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
}

// healthz is every app's readiness endpoint.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok\n")) // the prober only reads the status
}
