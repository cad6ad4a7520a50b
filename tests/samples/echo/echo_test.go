package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	confecho "sigs.k8s.io/gateway-api/conformance/utils/echo"
)

func TestParseServerFlags(t *testing.T) {
	// The conformance manifests' arguments, verbatim.
	c, err := ParseServerFlags([]string{"--tcp=9090", "--port=8080", "--grpc=7070", "--port=8443", "--tls=8443", "--crt=/cert.crt", "--key=/cert.key"})
	require.NoError(t, err)
	assert.Equal(t, []int{8080, 8443}, c.HTTPPorts)
	assert.Equal(t, []int{7070}, c.GRPCPorts)
	assert.Equal(t, []int{9090}, c.TCPPorts)
	assert.Equal(t, []int{8443}, c.TLSPorts)

	c, err = ParseServerFlags(nil)
	require.NoError(t, err)
	assert.Equal(t, []int{8080}, c.HTTPPorts, "Istio's defaults, as the consumer namespace's echo runs without args")
	assert.Equal(t, []int{7070}, c.GRPCPorts)

	for args, want := range map[string]string{
		"--port=0":                  "--port 0 is not a port",
		"--grpc=70000":              "--grpc 70000 is not a port",
		"--port=8080 --tcp=8080":    "port 8080 given to both",
		"--tls=9999":                "--tls 9999 is not an HTTP",
		"--bogus=1":                 "unknown flag: --bogus",
		"--port=8080 stray":         "unexpected arguments",
		"--port=8080 --grpc=eighty": "invalid argument",
	} {
		_, err := ParseServerFlags(strings.Fields(args))
		assert.ErrorContains(t, err, want, args)
	}
}

func TestParseClientFlags(t *testing.T) {
	// The suite's command line: URL first, flags after.
	c, err := ParseClientFlags([]string{"http://echo/v2", "--method=GET", "-H", "Version:one", "-H", "Host: echo-v1", "--count=500"})
	require.NoError(t, err)
	assert.Equal(t, "http://echo/v2", c.URL.String())
	assert.Equal(t, "one", c.Headers.Get("Version"))
	assert.Equal(t, "echo-v1", c.Host)
	assert.Empty(t, c.Headers.Values("Host"), "Host is the Host header, not an extra header")
	assert.Equal(t, 500, c.Count)

	for args, want := range map[string]string{
		"":                            "want exactly one URL",
		"http://a http://b":           "want exactly one URL",
		"ftp://echo/":                 "scheme must be",
		"grpc://echo":                 "needs a port",
		"http:///path":                "has no host",
		"http://echo -H novalue":      `header "novalue" is not Name:value`,
		"http://echo --count=0":       "--count 0 must be at least 1",
		"http://echo --timeout=-1s":   "must be positive",
		"http://echo --unknown":       "unknown flag",
		"http://echo -H :emptyname":   "is not Name:value",
		"http://echo --count=several": "invalid argument",
	} {
		_, err := ParseClientFlags(strings.Fields(args))
		assert.ErrorContains(t, err, want, args)
	}
}

func TestDescribePutsHeadersLast(t *testing.T) {
	fields := Describe(Request{Hostname: "h", Header: http.Header{"B": {"2"}, "A": {"1", "x\nHostname=forged"}}})
	var keys []string
	for _, f := range fields {
		keys = append(keys, f.Key)
	}
	assert.Equal(t, []string{KeyServiceVersion, KeyServicePort, KeyHost, KeyURL, KeyMethod, KeyProto, KeyAlpn, KeyIP, KeyHostname,
		KeyRequestHeader, KeyRequestHeader, KeyRequestHeader}, keys)

	var b bytes.Buffer
	require.NoError(t, WriteFields(&b, "", fields))
	assert.Contains(t, b.String(), "RequestHeader=A:1\nRequestHeader=A:x Hostname=forged\nRequestHeader=B:2\n",
		"sorted, and a line break in a value cannot start a field of its own")
	assert.Equal(t, "h", confecho.ParseResponse(b.String()).Hostname)
}

func TestServerCertificate(t *testing.T) {
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "cert.crt"), filepath.Join(dir, "cert.key")
	now := time.Now()

	c, generated, err := serverCertificate(crt, key, "echo-v1", now)
	require.NoError(t, err)
	assert.True(t, generated, "neither file: a self-signed certificate")
	require.Len(t, c.Certificate, 1)

	require.NoError(t, os.WriteFile(crt, []byte("not pem"), 0o600))
	_, _, err = serverCertificate(crt, key, "echo-v1", now)
	assert.ErrorContains(t, err, "load --crt", "one file without the other is an error, not a silent fallback")
}

// TestServe runs the server as the conformance manifests start it (HTTP,
// HTTP with TLS, gRPC, TCP) and calls every port with the client.
func TestServe(t *testing.T) {
	ports := freePorts(t, 4)
	c, err := ParseServerFlags([]string{
		"--port=" + ports[0], "--port=" + ports[1], "--tls=" + ports[1], "--grpc=" + ports[2], "--tcp=" + ports[3],
		"--crt=" + filepath.Join(t.TempDir(), "none.crt"), "--key=" + filepath.Join(t.TempDir(), "none.key"), "--version=v9",
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, c, Identity{Hostname: "echo-serve", Version: c.Version}, quiet) }()

	for _, url := range []string{
		"http://127.0.0.1:" + ports[0] + "/",
		"https://127.0.0.1:" + ports[1] + "/",
		"grpc://127.0.0.1:" + ports[2],
		"tcp://127.0.0.1:" + ports[3],
	} {
		var resp confecho.Response
		require.Eventually(t, func() bool {
			var out bytes.Buffer
			if err := run(ctx, "client", []string{url, "--insecure", "--timeout=1s"}, &out, nil); err != nil {
				return false
			}
			resp = confecho.ParseResponse(out.String())
			return true
		}, 5*time.Second, 50*time.Millisecond, url)
		assert.Equal(t, "200", resp.Code, url)
		assert.Equal(t, "echo-serve", resp.Hostname, url)
		assert.Equal(t, "v9", resp.Version, url)
	}

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err, "a cancelled server stops cleanly")
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
}

func TestServeFailsOnATakenPort(t *testing.T) {
	l, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	defer l.Close()
	taken := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	c, err := ParseServerFlags([]string{"--port=" + taken, "--grpc=" + freePorts(t, 1)[0]})
	require.NoError(t, err)
	err = Serve(context.Background(), c, Identity{Hostname: "h"}, quiet)
	assert.ErrorContains(t, err, "listen on "+taken)
}

// freePorts are n ports that were free a moment ago.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", ":0")
		require.NoError(t, err)
		ls = append(ls, l)
		out = append(out, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	for _, l := range ls {
		require.NoError(t, l.Close())
	}
	return out
}
