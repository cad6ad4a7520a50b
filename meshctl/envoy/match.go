package envoy

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// Connection is what Envoy's filter chain matching sees of a connection
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/listener/v3/listener_components.proto#config-listener-v3-filterchainmatch).
type Connection struct {
	Dest netip.AddrPort
	// TransportProtocol is "tls" or "raw_buffer" (tls_inspector's verdict);
	// ALPN the offered protocols.
	TransportProtocol string
	ALPN              []string
}

// MatchChain picks the filter chain Envoy uses for c, following Envoy's
// order of criteria: destination port, then the most specific destination
// prefix, then transport protocol, then application protocols, each
// preferring a chain that names the value over one that leaves it open.
// isDefault is true when no chain matches and the default chain applies;
// ok is false when there is not even a default chain (Envoy closes the
// connection).
func MatchChain(l Listener, c Connection) (fc FilterChain, isDefault, ok bool) {
	cands := slices.Clone(l.FilterChains)
	cands = narrow(cands, func(fc FilterChain) (bool, bool) {
		p := fc.Match.DestinationPort
		return p == nil, p != nil && *p == uint32(c.Dest.Port())
	})
	cands = narrowPrefix(cands, c.Dest.Addr())
	cands = narrow(cands, func(fc FilterChain) (bool, bool) {
		t := fc.Match.TransportProtocol
		return t == "", t != "" && t == c.TransportProtocol
	})
	cands = narrow(cands, func(fc FilterChain) (bool, bool) {
		a := fc.Match.ApplicationProtocols
		return len(a) == 0, slices.ContainsFunc(a, func(p string) bool { return slices.Contains(c.ALPN, p) })
	})
	if len(cands) > 0 {
		return cands[0], false, true
	}
	if l.DefaultFilterChain != nil {
		return *l.DefaultFilterChain, true, true
	}
	return FilterChain{}, false, false
}

// narrow keeps the chains that name a matching value, or, when none does,
// those that leave the criterion open.
func narrow(cands []FilterChain, test func(FilterChain) (open, match bool)) []FilterChain {
	var matched, open []FilterChain
	for _, fc := range cands {
		o, m := test(fc)
		switch {
		case m:
			matched = append(matched, fc)
		case o:
			open = append(open, fc)
		}
	}
	if len(matched) > 0 {
		return matched
	}
	return open
}

// narrowPrefix keeps the chains whose longest matching prefix is the
// longest overall; chains without prefixes match any address, least
// specifically.
func narrowPrefix(cands []FilterChain, addr netip.Addr) []FilterChain {
	best := -2
	var out []FilterChain
	for _, fc := range cands {
		bits := -2
		if len(fc.Match.PrefixRanges) == 0 {
			bits = -1
		}
		for _, r := range fc.Match.PrefixRanges {
			p, err := r.Prefix()
			if err == nil && p.Contains(addr) && p.Bits() > bits {
				bits = p.Bits()
			}
		}
		switch {
		case bits == -2:
		case bits > best:
			best, out = bits, []FilterChain{fc}
		case bits == best:
			out = append(out, fc)
		}
	}
	return out
}

// Request is the HTTP request explain reasons about.
type Request struct {
	Host, Path string
}

// RouteChoice is the outcome of route selection.
type RouteChoice struct {
	VirtualHost VirtualHost
	Route       Route
	// Skipped names routes passed over because they match on headers or
	// query parameters the request does not carry.
	Skipped []string
}

// SelectRoute picks the virtual host by the Host header (exact, then the
// longest suffix and prefix wildcards, then "*") and its first route whose
// path match accepts the request, as Envoy's router does
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/route/v3/route_components.proto).
func SelectRoute(rc RouteConfig, req Request) (RouteChoice, bool) {
	vh, ok := selectVirtualHost(rc.VirtualHosts, strings.ToLower(req.Host))
	if !ok {
		return RouteChoice{}, false
	}
	out := RouteChoice{VirtualHost: vh}
	for _, r := range vh.Routes {
		if !pathMatches(r.Match, req.Path) || isTracingDetour(r) {
			continue
		}
		if len(r.Match.Headers) > 0 || len(r.Match.QueryParameters) > 0 {
			out.Skipped = append(out.Skipped, routeName(r))
			continue
		}
		out.Route = r
		return out, true
	}
	return out, false
}

// isTracingDetour reports a route pilot puts first in a table with tracing
// on (pilot/generator/tracedetour.go): it sends the requests to trace
// through a traced listener that routes them with the same table, so the
// choice is the table's next route either way.
func isTracingDetour(r Route) bool { return strings.HasPrefix(r.Name, "weft.trace-") }

func routeName(r Route) string {
	if r.Name != "" {
		return r.Name
	}
	return describeMatch(r.Match)
}

// DescribeMatch is a route match in words: `prefix "/"`.
func (r Route) DescribeMatch() string { return describeMatch(r.Match) }

func describeMatch(m RouteMatch) string {
	switch {
	case m.Prefix != nil:
		return `prefix "` + *m.Prefix + `"`
	case m.Path != nil:
		return `path "` + *m.Path + `"`
	case m.PathSeparatedPrefix != nil:
		return `path prefix "` + *m.PathSeparatedPrefix + `"`
	case m.SafeRegex != nil:
		return `regex "` + m.SafeRegex.Regex + `"`
	}
	return "any"
}

func selectVirtualHost(vhs []VirtualHost, host string) (VirtualHost, bool) {
	if h, _, ok := strings.Cut(host, ":"); ok && !strings.Contains(h, "]") {
		host = h
	}
	type cand struct {
		vh    VirtualHost
		class int // 0 exact, 1 suffix wildcard, 2 prefix wildcard, 3 "*"
		n     int // length of the wildcard's fixed part
	}
	var best *cand
	for _, vh := range vhs {
		for _, d := range vh.Domains {
			d = strings.ToLower(d)
			var c *cand
			switch {
			case d == host:
				c = &cand{vh, 0, len(d)}
			case d == "*":
				c = &cand{vh, 3, 0}
			case strings.HasPrefix(d, "*") && strings.HasSuffix(host, d[1:]) && len(host) > len(d)-1:
				c = &cand{vh, 1, len(d) - 1}
			case strings.HasSuffix(d, "*") && strings.HasPrefix(host, d[:len(d)-1]) && len(host) > len(d)-1:
				c = &cand{vh, 2, len(d) - 1}
			}
			if c != nil && (best == nil || c.class < best.class || c.class == best.class && c.n > best.n) {
				best = c
			}
		}
	}
	if best == nil {
		return VirtualHost{}, false
	}
	return best.vh, true
}

func pathMatches(m RouteMatch, path string) bool {
	p, _, _ := strings.Cut(path, "?")
	switch {
	case m.Prefix != nil:
		return strings.HasPrefix(p, *m.Prefix)
	case m.Path != nil:
		return p == *m.Path
	case m.PathSeparatedPrefix != nil:
		pre := *m.PathSeparatedPrefix
		return p == pre || strings.HasPrefix(p, strings.TrimSuffix(pre, "/")+"/")
	case m.SafeRegex != nil:
		re, err := regexp.Compile("^(?:" + m.SafeRegex.Regex + ")$")
		return err == nil && re.MatchString(p)
	}
	return false
}
