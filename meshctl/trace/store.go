// Package trace is meshctl trace: it reads traces from the trace store
// that runs beside the OpenTelemetry Collector (its HTTP JSON API on port
// 16686) and lays one trace out as a timeline — a tree of spans with their
// offsets, durations and bars scaled to the trace — with, for a
// network-programming trace (docs/observability.md), how long every node's
// rules and every proxy's config took to catch up with the change.
// Building the timeline is pure; the store is reached through a
// port-forward to the collector pod (connect.go).
package trace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TraceInfo is one trace of the store's list (GET /api/traces).
type TraceInfo struct {
	TraceID   string    `json:"traceId"`
	RootName  string    `json:"rootName"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	SpanCount int       `json:"spanCount"`
	Services  []string  `json:"services"`
}

// Trace is one trace with all its spans (GET /api/traces/<id>), sorted by
// start.
type Trace struct {
	TraceID string `json:"traceId"`
	Spans   []Span `json:"spans"`
}

// Span is one span as the store keeps it: OTLP's fields with the resource's
// service.name lifted out and attribute values as strings.
type Span struct {
	SpanID       string     `json:"spanId"`
	ParentSpanID string     `json:"parentSpanId"`
	Name         string     `json:"name"`
	Service      string     `json:"service"`
	Kind         string     `json:"kind"`
	Start        time.Time  `json:"start"`
	End          time.Time  `json:"end"`
	Status       SpanStatus `json:"status"`
	Attributes   Attributes `json:"attributes,omitempty"`
	Resource     Attributes `json:"resource,omitempty"`
}

// SpanStatus is OTLP's status: UNSET, OK or ERROR with a message.
type SpanStatus struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
}

// StatusError is the status code of a failed span.
const StatusError = "ERROR"

// Attributes are span or resource attributes. The store sends strings;
// numbers, booleans and arrays are accepted too and kept in their JSON
// spelling (arrays joined by commas), so a store that keeps types does not
// break meshctl.
type Attributes map[string]string

// UnmarshalJSON accepts any scalar or array value.
func (a *Attributes) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("attributes: %w", err)
	}
	out := make(Attributes, len(raw))
	for k, v := range raw {
		out[k] = scalar(v)
	}
	*a = out
	return nil
}

func scalar(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var list []json.RawMessage
	if json.Unmarshal(v, &list) == nil {
		parts := make([]string, len(list))
		for i, x := range list {
			parts[i] = scalar(x)
		}
		return strings.Join(parts, ",")
	}
	return strings.TrimSpace(string(v))
}

// Query selects traces of the list; empty fields do not filter.
type Query struct {
	// Name is the root span's name.
	Name string
	// Service is a service.name that has a span in the trace.
	Service string
	// Limit caps the list (newest first); 0 leaves it to the store.
	Limit int
}

// Store is what reads traces; Client is the HTTP one, tests may fake it.
type Store interface {
	List(ctx context.Context, q Query) ([]TraceInfo, error)
	Get(ctx context.Context, id string) (*Trace, error)
}

// NotFoundError is the store's 404 for a trace ID it does not hold.
type NotFoundError struct{ ID string }

func (e *NotFoundError) Error() string { return "trace " + e.ID + " not found" }

// AnswerError is a store answer other than 200 (404 for a trace is
// NotFoundError): the store is reachable but refused or failed.
type AnswerError struct {
	Status int
	Msg    string
}

func (e *AnswerError) Error() string {
	return fmt.Sprintf("trace store answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Msg)
}

// TransportError is a request that got no HTTP answer: the store (or the
// tunnel to it) is unreachable.
type TransportError struct{ Err error }

func (e *TransportError) Error() string { return "trace store unreachable: " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// Client speaks the store's HTTP JSON API at BaseURL (http://host:port).
type Client struct {
	BaseURL string
	// HTTP defaults to a client with a 30s timeout.
	HTTP *http.Client
}

var traceID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// ParseTraceID normalises a trace ID (32 hex digits, W3C trace context)
// to lower case, or says what is wrong with it.
func ParseTraceID(s string) (string, error) {
	id := strings.ToLower(strings.TrimSpace(s))
	if !traceID.MatchString(id) || id == strings.Repeat("0", 32) {
		return "", fmt.Errorf("trace ID %q is not 32 hex digits (list trace IDs with meshctl trace)", s)
	}
	return id, nil
}

// List returns the traces q selects, newest first.
func (c *Client) List(ctx context.Context, q Query) ([]TraceInfo, error) {
	v := url.Values{}
	if q.Name != "" {
		v.Set("name", q.Name)
	}
	if q.Service != "" {
		v.Set("service", q.Service)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/api/traces"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out struct {
		Traces []TraceInfo `json:"traces"`
	}
	if err := c.get(ctx, path, &out); err != nil {
		return nil, err
	}
	sort.SliceStable(out.Traces, func(i, j int) bool { return out.Traces[i].Start.After(out.Traces[j].Start) })
	if out.Traces == nil {
		out.Traces = []TraceInfo{}
	}
	return out.Traces, nil
}

// Get returns one trace with its spans sorted by start; a NotFoundError
// when the store does not hold it.
func (c *Client) Get(ctx context.Context, id string) (*Trace, error) {
	var out Trace
	err := c.get(ctx, "/api/traces/"+url.PathEscape(id), &out)
	var ae *AnswerError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, &NotFoundError{ID: id}
	}
	if err != nil {
		return nil, err
	}
	if out.TraceID == "" {
		out.TraceID = id
	}
	sort.SliceStable(out.Spans, func(i, j int) bool { return out.Spans[i].Start.Before(out.Spans[j].Start) })
	return &out, nil
}

// Healthy checks GET /healthz.
func (c *Client) Healthy(ctx context.Context) error {
	return c.get(ctx, "/healthz", nil)
}

func (c *Client) get(ctx context.Context, path string, into any) error {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.BaseURL, "/")+path, nil)
	if err != nil {
		return fmt.Errorf("trace store request %s: %w", path, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &TransportError{Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &TransportError{Err: fmt.Errorf("read %s: %w", path, err)}
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return &AnswerError{Status: resp.StatusCode, Msg: msg}
	}
	if into == nil {
		return nil
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("decode trace store answer to %s: %w", path, err)
	}
	return nil
}
