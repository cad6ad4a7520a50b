package telemetry

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A ServeMux handed to ServeListener keeps all its routes: pilot serves
// /debug/syncz (meshctl proxy-status) next to /metrics.
func TestServeListenerKeepsAMuxRoutes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "metrics") })
	mux.HandleFunc("/debug/syncz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "[]") })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, lis, mux) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	for path, want := range map[string]string{"/metrics": "metrics", "/debug/syncz": "[]"} {
		resp, err := http.Get("http://" + lis.Addr().String() + path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Equal(t, want, string(body), path)
	}
}
