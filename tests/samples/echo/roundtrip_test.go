package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	confecho "sigs.k8s.io/gateway-api/conformance/utils/echo"
)

// These tests feed the client's real output to the conformance suite's own
// parser (confecho.ParseResponse), so a format drift shows up here and not
// as a wall of red conformance tests.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// clientOutput runs `client <args>` and returns its stdout.
func clientOutput(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), "client", args, &out, io.Discard))
	return out.String()
}

func TestHTTPRoundTripThroughSuiteParser(t *testing.T) {
	srv := httptest.NewServer(NewHandler(Identity{Hostname: "echo-v1-5d9c7", Version: "v1"}, quiet))
	defer srv.Close()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)

	out := clientOutput(t, srv.URL+"/path?animal=whale", "--method=PUT", "-H", "Version:one", "-H", "Host:echo-v2", "-H", "X-Multi:a", "-H", "X-Multi:b")
	resp := confecho.ParseResponse(out)

	assert.Equal(t, "200", resp.Code)
	assert.Equal(t, "echo-v1-5d9c7", resp.Hostname)
	assert.Equal(t, "v1", resp.Version)
	assert.Equal(t, port, resp.Port)
	assert.Equal(t, "echo-v2", resp.Host, "a -H Host:... flag sets the Host header")
	assert.Equal(t, "/path?animal=whale", resp.URL)
	assert.Equal(t, "PUT", resp.Method)
	assert.Equal(t, "HTTP/1.1", resp.Protocol)
	assert.Equal(t, "127.0.0.1", resp.IP)
	assert.Equal(t, []string{"one"}, resp.RequestHeaders.Values("Version"))
	assert.Equal(t, []string{"a", "b"}, resp.RequestHeaders.Values("X-Multi"))
	assert.Equal(t, "text/plain; charset=utf-8", resp.ResponseHeaders.Get("Content-Type"))
}

// A proxy's own answers (404 for no route, redirects) have no echo body:
// the status and headers must still parse, and redirects are not followed.
func TestHTTPProxyAnswersParse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			w.Header().Set("Location", "http://example.org/elsewhere")
			w.WriteHeader(http.StatusSeeOther)
		default:
			w.Header().Set("X-Header-Set", "v1")
			http.Error(w, "no route: StatusCode=200 in a body must not win", http.StatusNotFound)
		}
	}))
	defer srv.Close()

	resp := confecho.ParseResponse(clientOutput(t, srv.URL+"/redirect"))
	assert.Equal(t, "303", resp.Code)
	assert.Equal(t, "http://example.org/elsewhere", resp.ResponseHeaders.Get("Location"))
	assert.Empty(t, resp.Hostname)

	resp = confecho.ParseResponse(clientOutput(t, srv.URL+"/nothing"))
	assert.Equal(t, "404", resp.Code)
	assert.Equal(t, "v1", resp.ResponseHeaders.Get("X-Header-Set"))
}

// The suite's RequestBatch splits --count output on blank lines, keeps
// sections with a Hostname or StatusCode and wants exactly count of them.
func TestBatchOutputSplitsLikeTheSuite(t *testing.T) {
	srv := httptest.NewServer(NewHandler(Identity{Hostname: "echo-v2-abc"}, quiet))
	defer srv.Close()

	out := clientOutput(t, srv.URL+"/", "--count=5")
	var sections []confecho.Response
	for _, s := range strings.Split(out, "\n\n") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if r := confecho.ParseResponse(s); r.Hostname != "" || r.Code != "" {
			sections = append(sections, r)
		}
	}
	require.Len(t, sections, 5)
	for i, r := range sections {
		assert.Equal(t, "echo-v2-abc", r.Hostname, "answer %d", i)
		assert.Equal(t, "200", r.Code, "answer %d", i)
	}
}

func TestGRPCRoundTripThroughSuiteParser(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	srv := NewGRPCServer(Identity{Hostname: "echo-v1-grpc"}, port)
	go func() { assert.NoError(t, srv.Serve(l)) }()
	defer srv.Stop()

	out := clientOutput(t, "grpc://"+l.Addr().String(), "-H", "X-Trace:7", "--count=3")
	first := confecho.ParseResponse(strings.Split(out, "\n\n")[0])
	assert.Equal(t, "200", first.Code, "gRPC OK is reported as 200, which the suite expects")
	assert.Equal(t, "echo-v1-grpc", first.Hostname)
	assert.Equal(t, port, first.Port)
	assert.Equal(t, l.Addr().String(), first.Host, ":authority is the Host")
	assert.Equal(t, echoMethod, first.URL)
	assert.Equal(t, "HTTP/2.0", first.Protocol)
	assert.Equal(t, []string{"7"}, first.RequestHeaders.Values("X-Trace"))
	assert.Equal(t, 3, strings.Count(out, "StatusCode=200"))
}

func TestGRPCStatusIsAnAnswer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer() // without the Echo service: Unimplemented
	go func() { assert.NoError(t, srv.Serve(l)) }()
	defer srv.Stop()

	out := clientOutput(t, "grpc://"+l.Addr().String())
	resp := confecho.ParseResponse(out)
	assert.Equal(t, "501", resp.Code)
	assert.Contains(t, out, "[0] GrpcStatus=Unimplemented\n")

	// A port nobody listens on: no answer, an error.
	var buf bytes.Buffer
	err = run(context.Background(), "client", []string{"grpc://" + closedPort(t), "--timeout=2s"}, &buf, io.Discard)
	assert.ErrorContains(t, err, "grpc call")
	assert.Empty(t, buf.String())
}

func TestTCPRoundTrip(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { assert.NoError(t, ServeTCP(ctx, l, Identity{Hostname: "echo-tcp"}, quiet)) }()

	out := clientOutput(t, "tcp://"+l.Addr().String(), "--msg=hello")
	resp := confecho.ParseResponse(out)
	assert.Equal(t, "200", resp.Code)
	assert.Equal(t, "echo-tcp", resp.Hostname)
	assert.Contains(t, out, "[0 body] hello\n", "the payload is echoed back")
}

func TestNoAnswerIsAnError(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), "echo", []string{"client", "http://" + closedPort(t) + "/", "--timeout=2s"}, &out, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "request 1 of 1")
	assert.Empty(t, out.String())
}

// closedPort is a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}
