package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHandler(t *testing.T) {
	h := NewHandler(Identity{Hostname: "pod-a", Node: "node-1"})
	tests := []struct {
		path     string
		wantCode int
		wantLen  int
	}{
		{"/", 200, -1},
		{"/headers", 200, -1},
		{"/status/503", 503, -1},
		{"/status/abc", 400, -1},
		{"/status/1000", 400, -1},
		{"/delay/0.01", 200, -1},
		{"/delay/31", 400, -1},
		{"/bytes/1024", 200, 1024},
		{"/bytes/-1", 400, -1},
		{"/healthz", 200, 3},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.path, nil)
			req.Header.Set("X-Forwarded-Client-Cert", "By=spiffe://cluster.local/ns/a/sa/b")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tt.wantCode, rec.Code)
			if tt.wantLen >= 0 {
				assert.Equal(t, tt.wantLen, rec.Body.Len())
			}
		})
	}
}

func TestEchoCarriesIdentityAndHeaders(t *testing.T) {
	h := NewHandler(Identity{Hostname: "pod-a", Node: "node-1"})
	req := httptest.NewRequest("POST", "/anything/x", nil)
	req.Header.Set("X-Forwarded-Client-Cert", "By=spiffe://cluster.local/ns/a/sa/b")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	var got Echo
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, "pod-a", got.Hostname)
	assert.Equal(t, "node-1", got.Node)
	assert.Equal(t, "POST", got.Method)
	assert.Equal(t, "/anything/x", got.Path)
	assert.Equal(t, []string{"By=spiffe://cluster.local/ns/a/sa/b"}, got.Headers["X-Forwarded-Client-Cert"])
}

func TestUDPEcho(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	probe, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := probe.LocalAddr().String()
	probe.Close()
	done := make(chan error, 1)
	go func() { done <- serveUDP(ctx, addr, Identity{Hostname: "pod-u"}) }()
	var reply []byte
	require.Eventually(t, func() bool {
		conn, err := net.Dial("udp", addr)
		if err != nil {
			return false
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := conn.Write([]byte("hi")); err != nil {
			return false
		}
		buf := make([]byte, 512)
		n, err := conn.Read(buf)
		reply = buf[:n]
		return err == nil
	}, 2*time.Second, 20*time.Millisecond)
	var got struct{ Hostname, Message string }
	require.NoError(t, json.Unmarshal(reply, &got))
	assert.Equal(t, "pod-u", got.Hostname)
	assert.Equal(t, "hi", got.Message)
	cancel()
	require.NoError(t, <-done)
}
