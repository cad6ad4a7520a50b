package main

import (
	"log/slog"
	"net"
	"net/http"
	"strconv"
)

// Identity is who answers: the pod's hostname (the suite checks that it
// starts with the expected Deployment's name) and the --version flag.
type Identity struct {
	Hostname string
	Version  string
}

// NewHandler answers every HTTP request with its description in the echo
// text format (Describe), status 200, as Istio's echo server does: the
// suite sends plain GETs and checks where they landed and which request
// headers arrived.
func NewHandler(id Identity, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fields := Describe(httpRequest(id, r))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := WriteFields(w, "", fields); err != nil {
			log.Debug("answer not written", "remote", r.RemoteAddr, "err", err)
		}
	})
}

func httpRequest(id Identity, r *http.Request) Request {
	out := Request{
		Version:  id.Version,
		Hostname: id.Hostname,
		Host:     r.Host,
		URL:      r.URL.RequestURI(),
		Method:   r.Method,
		Proto:    r.Proto,
		Header:   r.Header,
	}
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		out.Port = portOf(addr)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		out.ClientIP = host
	}
	if r.TLS != nil {
		out.Alpn = r.TLS.NegotiatedProtocol
	}
	return out
}

// portOf is the port of a TCP address, "" for other kinds.
func portOf(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return strconv.Itoa(tcp.Port)
	}
	return ""
}
