package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDoSendsHeadersAndReturnsStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "jason", r.Header.Get("End-User"))
		assert.Equal(t, "b.example", r.Host)
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("body"))
	}))
	defer srv.Close()
	var out, verbose bytes.Buffer
	code, err := Do(context.Background(), Request{Method: "GET", URL: srv.URL, Headers: []string{"end-user: jason", "Host: b.example"}, Timeout: time.Second, Verbose: true}, &out, &verbose)
	require.NoError(t, err)
	assert.Equal(t, http.StatusTeapot, code)
	assert.Equal(t, "body", out.String())
	assert.Contains(t, verbose.String(), "418")
}

func TestLoadSummarisesCodesAndServers(t *testing.T) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n++
		w.Header().Set("X-Served-By", "pod-a")
		if n%2 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	sum := Load(context.Background(), Request{Method: "GET", URL: srv.URL, Count: 10, Concurrency: 1, Timeout: time.Second})
	assert.Equal(t, map[string]int{"200": 5, "503": 5}, sum.Codes)
	assert.Equal(t, map[string]int{"pod-a": 10}, sum.ServedBy)
}

func TestLoadCountsConnectionErrors(t *testing.T) {
	sum := Load(context.Background(), Request{Method: "GET", URL: "http://127.0.0.1:1", Count: 3, Concurrency: 2, Timeout: time.Second})
	assert.Equal(t, 3, sum.Codes["error"])
	assert.NotEmpty(t, sum.Errors)
}

func TestBadHeaderIsAnError(t *testing.T) {
	_, err := Do(context.Background(), Request{Method: "GET", URL: "http://127.0.0.1:1", Headers: []string{"nocolon"}, Timeout: time.Second}, &bytes.Buffer{}, &bytes.Buffer{})
	assert.ErrorContains(t, err, "nocolon")
}

func TestUDPRoundTrip(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer conn.Close()
	go func() {
		buf := make([]byte, 64)
		n, from, err := conn.ReadFrom(buf)
		if err == nil {
			_, _ = conn.WriteTo(append([]byte("pong:"), buf[:n]...), from)
		}
	}()
	var out bytes.Buffer
	require.NoError(t, UDP(context.Background(), conn.LocalAddr().String(), 0, time.Second, &out))
	assert.Equal(t, "pong:ping", out.String())
}

func TestUDPNoReplyIsAnError(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer conn.Close()
	err = UDP(context.Background(), conn.LocalAddr().String(), 0, 100*time.Millisecond, &bytes.Buffer{})
	assert.ErrorContains(t, err, "no reply")
}

func TestRunPrintsSummaryForOneRequestWhenAsked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", "pod-a")
		_, _ = io.WriteString(w, `{"body": true}`)
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	req := Request{Method: "GET", URL: srv.URL, Count: 1, Concurrency: 4, Timeout: time.Second, Summary: true}
	require.Equal(t, 0, run(context.Background(), req, &out, &errOut), errOut.String())
	var sum Summary
	require.NoError(t, json.Unmarshal(out.Bytes(), &sum))
	assert.Equal(t, 1, sum.Requests)
	assert.Equal(t, map[string]int{"200": 1}, sum.Codes)
	assert.Equal(t, map[string]int{"pod-a": 1}, sum.ServedBy)
}
