package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Identity says which pod answered; tests read it to see where a request
// landed (load balancing, locality, traffic splits).
type Identity struct {
	Hostname  string `json:"hostname"`
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Node      string `json:"node,omitempty"`
	IP        string `json:"ip,omitempty"`
}

// Echo is the JSON body of most responses.
type Echo struct {
	Identity
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Client  string              `json:"client"`
	Headers map[string][]string `json:"headers"`
}

// maxBytes and maxDelay bound what a caller can make the server do.
const (
	maxBytes = 10 << 20
	maxDelay = 30 * time.Second
)

// NewHandler serves:
//
//	/, /headers, /anything/...  echo the request as JSON
//	/status/<code>             respond with that status
//	/delay/<seconds>           echo after a delay (fractions allowed, ≤30s)
//	/bytes/<n>                 n bytes of payload (≤10 MiB)
//	/healthz                   200 "ok"
func NewHandler(id Identity) http.Handler {
	mux := http.NewServeMux()
	echo := func(w http.ResponseWriter, r *http.Request) { writeEcho(w, r, id, http.StatusOK) }
	mux.HandleFunc("/", echo)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil || code < 100 || code > 599 {
			http.Error(w, "status must be a number in 100..599", http.StatusBadRequest)
			return
		}
		writeEcho(w, r, id, code)
	})
	mux.HandleFunc("/delay/{seconds}", func(w http.ResponseWriter, r *http.Request) {
		s, err := strconv.ParseFloat(r.PathValue("seconds"), 64)
		d := time.Duration(s * float64(time.Second))
		if err != nil || d < 0 || d > maxDelay {
			http.Error(w, "delay must be seconds in 0..30", http.StatusBadRequest)
			return
		}
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		echo(w, r)
	})
	mux.HandleFunc("/bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 0 || n > maxBytes {
			http.Error(w, "bytes must be in 0..10485760", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte(strings.Repeat("x", n)))
	})
	return mux
}

func writeEcho(w http.ResponseWriter, r *http.Request, id Identity, code int) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Served-By", id.Hostname)
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(Echo{Identity: id, Method: r.Method, Path: r.URL.Path, Client: r.RemoteAddr, Headers: r.Header})
}
