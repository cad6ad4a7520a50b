package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// maxBody bounds how much of one answer the client reads.
const maxBody = 1 << 20

// ClientConfig is `echo client URL [flags]`, the command the Gateway API
// conformance suite execs in the echo container: `client <url>
// [--method=M] [-H name:value]... [--count=N]`. Flags may follow the URL,
// as in the suite's commands.
type ClientConfig struct {
	URL *url.URL
	// Method is the HTTP method (ignored for grpc and tcp).
	Method string
	// Host overrides the Host header (HTTP) or :authority (gRPC); it is
	// taken from a "-H Host:..." flag.
	Host    string
	Headers http.Header
	// Count requests are sent one after another; their answers are
	// separated by a blank line.
	Count   int
	Timeout time.Duration
	// Insecure skips verifying the server's certificate (https only).
	Insecure bool
	// Message is the payload of grpc and tcp requests.
	Message string
}

// ParseClientFlags reads the client's arguments: exactly one URL with
// scheme http, https, grpc or tcp (the last two with a port), headers as
// "Name:value", count ≥ 1, a positive timeout.
func ParseClientFlags(args []string) (ClientConfig, error) {
	c := ClientConfig{Headers: http.Header{}}
	var headers []string
	fs := pflag.NewFlagSet("client", pflag.ContinueOnError)
	fs.StringVar(&c.Method, "method", http.MethodGet, "HTTP method")
	fs.StringArrayVarP(&headers, "header", "H", nil, "request header Name:value (repeatable; Host sets the Host header)")
	fs.IntVar(&c.Count, "count", 1, "number of requests, sent one after another")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Second, "timeout of each request")
	fs.BoolVar(&c.Insecure, "insecure", false, "https: do not verify the server's certificate")
	fs.StringVar(&c.Message, "msg", "echo", "payload of grpc and tcp requests")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("client: %w", err)
	}
	if fs.NArg() != 1 {
		return c, fmt.Errorf("client: want exactly one URL, got %d arguments %q", fs.NArg(), fs.Args())
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil {
		return c, fmt.Errorf("client: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
	case "grpc", "tcp":
		if u.Port() == "" {
			return c, fmt.Errorf("client: %s URL %q needs a port", u.Scheme, u)
		}
	default:
		return c, fmt.Errorf("client: URL %q: scheme must be http, https, grpc or tcp", u)
	}
	if u.Host == "" {
		return c, fmt.Errorf("client: URL %q has no host", u)
	}
	c.URL = u
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return c, fmt.Errorf("client: header %q is not Name:value", h)
		}
		if strings.EqualFold(name, "Host") {
			c.Host = strings.TrimSpace(value)
			continue
		}
		c.Headers.Add(name, strings.TrimSpace(value))
	}
	if c.Count < 1 {
		return c, fmt.Errorf("client: --count %d must be at least 1", c.Count)
	}
	if c.Timeout <= 0 {
		return c, fmt.Errorf("client: --timeout %v must be positive", c.Timeout)
	}
	return c, nil
}

// Answer is what the client received for one request: a status (HTTP, or
// the HTTP equivalent of a gRPC status), response headers and body lines.
type Answer struct {
	StatusCode int
	// GrpcStatus is the gRPC status name ("" for HTTP and TCP).
	GrpcStatus string
	Header     http.Header
	Body       []string
}

// Fields are the answer's client-side fields, then its body lines. The
// status comes first so that it, not a StatusCode line in a body, is the
// one the suite's first-match parser reads.
func (a Answer) Fields() []Field {
	out := []Field{{KeyStatusCode, fmt.Sprint(a.StatusCode)}}
	if a.GrpcStatus != "" {
		out = append(out, Field{KeyGrpcStatus, a.GrpcStatus})
	}
	return append(out, headerFields(KeyResponseHeader, a.Header)...)
}

// Write prints answer i as the suite reads it: "[i] Key=Value" lines, the
// body as "[i body] <line>", then a blank line, which separates the
// answers of a --count batch.
func (a Answer) Write(w io.Writer, i int) error {
	if err := WriteFields(w, fmt.Sprintf("[%d] ", i), a.Fields()); err != nil {
		return err
	}
	var b strings.Builder
	for _, l := range a.Body {
		fmt.Fprintf(&b, "[%d body] %s\n", i, oneLine(l))
	}
	b.WriteByte('\n')
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write answer %d: %w", i, err)
	}
	return nil
}

// caller sends one request.
type caller func(ctx context.Context) (Answer, error)

// RunClient sends c.Count requests one after another and prints each
// answer. A request that gets no answer at all (refused, reset, timed out)
// stops the batch with an error, so the suite retries instead of counting
// a short batch.
func RunClient(ctx context.Context, c ClientConfig, stdout io.Writer) error {
	call, closeFn, err := newCaller(c)
	if err != nil {
		return err
	}
	defer closeFn()
	for i := range c.Count {
		a, err := call(ctx)
		if err != nil {
			return fmt.Errorf("request %d of %d to %s: %w", i+1, c.Count, c.URL, err)
		}
		if err := a.Write(stdout, i); err != nil {
			return err
		}
	}
	return nil
}

func newCaller(c ClientConfig) (caller, func(), error) {
	switch c.URL.Scheme {
	case "grpc":
		return newGRPCCaller(c)
	case "tcp":
		addr := c.URL.Host
		return func(ctx context.Context) (Answer, error) {
			lines, err := tcpCall(ctx, addr, c.Message, c.Timeout)
			if err != nil {
				return Answer{}, err
			}
			return Answer{StatusCode: http.StatusOK, Header: http.Header{}, Body: lines}, nil
		}, func() {}, nil
	}
	return newHTTPCaller(c), func() {}, nil
}

// newHTTPCaller never follows redirects: the suite checks the redirect's
// own status and Location.
func newHTTPCaller(c ClientConfig) caller {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = (&net.Dialer{Timeout: c.Timeout}).DialContext
	if c.Insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with --insecure
	}
	hc := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return func(ctx context.Context) (Answer, error) {
		ctx, cancel := context.WithTimeout(ctx, c.Timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, c.Method, c.URL.String(), nil)
		if err != nil {
			return Answer{}, fmt.Errorf("build request: %w", err)
		}
		for name, vs := range c.Headers {
			req.Header[name] = append(req.Header[name], vs...)
		}
		if c.Host != "" {
			req.Host = c.Host
		}
		resp, err := hc.Do(req)
		if err != nil {
			return Answer{}, err
		}
		defer resp.Body.Close()
		lines, err := ReadLines(resp.Body, maxBody)
		if err != nil {
			return Answer{}, err
		}
		return Answer{StatusCode: resp.StatusCode, Header: resp.Header, Body: lines}, nil
	}
}
