package main

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// Field is one "Key=Value" line of the echo text format, the format the
// Gateway API conformance suite reads from the echo client's output
// (sigs.k8s.io/gateway-api/conformance/utils/echo.ParseResponse). The suite
// takes the first line of each key and every RequestHeader/ResponseHeader
// line, so the order of a description matters: scalars first, headers last.
type Field struct{ Key, Value string }

// Keys of the echo text format. The server answers with the Request*
// group; the client adds StatusCode, GrpcStatus and ResponseHeader from
// what it received. No key contains another key followed by "=" (say
// "ClientIP=" would also read as "IP="), because the suite's parser looks
// for "Key=" anywhere in a line.
const (
	KeyServiceVersion = "ServiceVersion"
	KeyServicePort    = "ServicePort"
	KeyHost           = "Host"
	KeyURL            = "URL"
	KeyMethod         = "Method"
	KeyProto          = "Proto"
	KeyAlpn           = "Alpn"
	KeyIP             = "IP"
	KeyHostname       = "Hostname"
	KeyRequestHeader  = "RequestHeader"
	KeyStatusCode     = "StatusCode"
	KeyGrpcStatus     = "GrpcStatus"
	KeyResponseHeader = "ResponseHeader"
	KeyError          = "Error"
)

// Request is what the server observed about one request, protocol-neutral
// so HTTP, gRPC and TCP answers share one description.
type Request struct {
	// Version is the server's --version (Istio's ServiceVersion).
	Version string
	// Port is the local port the request arrived on.
	Port     string
	Host     string
	URL      string
	Method   string
	Proto    string
	Alpn     string
	ClientIP string
	Hostname string
	Header   http.Header
}

// Describe lists the fields of r in the order the suite's first-match
// parser needs: every scalar before any header line, headers sorted by
// name so answers are reproducible.
func Describe(r Request) []Field {
	out := []Field{
		{KeyServiceVersion, r.Version},
		{KeyServicePort, r.Port},
		{KeyHost, r.Host},
		{KeyURL, r.URL},
		{KeyMethod, r.Method},
		{KeyProto, r.Proto},
		{KeyAlpn, r.Alpn},
		{KeyIP, r.ClientIP},
		{KeyHostname, r.Hostname},
	}
	return append(out, headerFields(KeyRequestHeader, r.Header)...)
}

// headerFields is one "<key>=Name:value" field per header value.
func headerFields(key string, h http.Header) []Field {
	var out []Field
	for _, name := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[name] {
			out = append(out, Field{key, name + ":" + v})
		}
	}
	return out
}

// WriteFields writes one "Key=Value" line per field, each after prefix.
// Line breaks inside values are replaced by spaces: a value must never
// start a line of its own, or it could be read as another field.
func WriteFields(w io.Writer, prefix string, fields []Field) error {
	var b strings.Builder
	for _, f := range fields {
		b.WriteString(prefix)
		b.WriteString(f.Key)
		b.WriteByte('=')
		b.WriteString(oneLine(f.Value))
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write fields: %w", err)
	}
	return nil
}

func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// ReadLines splits a body into lines, at most max bytes of it (an answer
// that is not from an echo server, e.g. a proxy's error page, is shown
// as it is, bounded).
func ReadLines(r io.Reader, max int64) ([]string, error) {
	var lines []string
	sc := bufio.NewScanner(io.LimitReader(r, max))
	sc.Buffer(make([]byte, 0, 64<<10), int(max))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return lines, fmt.Errorf("read body: %w", err)
	}
	return lines, nil
}
