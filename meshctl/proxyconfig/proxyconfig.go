// Package proxyconfig is meshctl proxy-config: it summarises a sidecar's
// Envoy config dump (package envoy) as tables of listeners (one row per
// filter chain), clusters, routes, endpoints and secrets. With -o json or
// yaml the listeners, clusters, routes and endpoints are Envoy's own
// config dump sections, unabridged; secrets are decoded certificates
// (Envoy redacts private keys and prints certificates base64-encoded).
package proxyconfig

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weftmesh/weft/meshctl/envoy"
	"github.com/weftmesh/weft/meshctl/output"
	"github.com/weftmesh/weft/pilot/generator"
)

// Kinds are the proxy-config subcommands.
var Kinds = []string{"listeners", "clusters", "routes", "endpoints", "secrets"}

// section is a table over a raw config dump section: the table for
// humans, Envoy's JSON for machines.
type section struct {
	rows output.Rows
	raw  json.RawMessage
}

func (s section) WriteTable(w io.Writer) error { return s.rows.Write(w) }

// MarshalJSON is the config dump section as Envoy printed it.
func (s section) MarshalJSON() ([]byte, error) {
	if len(s.raw) == 0 {
		return []byte("{}"), nil
	}
	return s.raw, nil
}

// Listeners has one row per filter chain: what it matches and where it
// sends the connection.
func Listeners(d *envoy.ConfigDump) output.Tabular {
	t := output.Rows{Header: []string{"LISTENER", "ADDRESS", "CHAIN", "MATCH", "DESTINATION", "TLS"}}
	for _, l := range d.Listeners {
		if l.State == envoy.StateError {
			t.Add(l.Name, "-", "-", "-", "REJECTED: "+l.Error, "-")
			continue
		}
		name := l.Name
		if l.State == envoy.StateWarming {
			name += " (warming)"
		}
		chains := l.FilterChains
		if l.DefaultFilterChain != nil {
			def := *l.DefaultFilterChain
			if def.Name == "" {
				def.Name = "(default)"
			} else {
				def.Name += " (default)"
			}
			chains = append(chains, def)
		}
		for _, fc := range chains {
			t.Add(name, l.Address.String(), output.Dash(fc.Name), fc.Match.String(), fc.Destination(), downstreamTLS(fc))
		}
		if len(chains) == 0 {
			t.Add(name, l.Address.String(), "-", "-", "-", "-")
		}
	}
	return section{rows: t, raw: d.Sections[envoy.SectionListeners]}
}

func downstreamTLS(fc envoy.FilterChain) string {
	tls, ok := fc.TransportSocket.TLS()
	if !ok {
		return "-"
	}
	if tls.RequireClientCert {
		return "mTLS (" + strings.Join(tls.SANs, ",") + ")"
	}
	return "TLS"
}

// Clusters has one row per cluster, with the Service and port of
// outbound|<port>||<host> and inbound|<port>|| names.
func Clusters(d *envoy.ConfigDump) output.Tabular {
	t := output.Rows{Header: []string{"CLUSTER", "SERVICE", "PORT", "DIRECTION", "TYPE", "LB", "TLS", "PEER IDENTITIES"}}
	for _, c := range d.Clusters {
		dir, port, host := ParseClusterName(c.Name)
		mode, tls := c.UpstreamTLS()
		t.Add(c.Name, output.Dash(host), output.Dash(port), output.Dash(dir), c.Kind(), c.Balancer(), mode, output.Dash(strings.Join(tls.SANs, ",")))
	}
	return section{rows: t, raw: d.Sections[envoy.SectionClusters]}
}

// ParseClusterName splits Weft's (Istio's) cluster names:
// outbound|<port>||<host> and inbound|<port>||.
func ParseClusterName(name string) (direction, port, host string) {
	parts := strings.Split(name, "|")
	if len(parts) != 4 || parts[0] != "outbound" && parts[0] != "inbound" {
		return "", "", ""
	}
	return parts[0], parts[1], parts[3]
}

// Routes has one row per route.
func Routes(d *envoy.ConfigDump) output.Tabular {
	t := output.Rows{Header: []string{"ROUTE CONFIG", "VIRTUAL HOST", "DOMAINS", "MATCH", "DESTINATION"}}
	for _, rc := range d.Routes {
		for _, vh := range rc.VirtualHosts {
			for _, r := range vh.Routes {
				t.Add(rc.Name, vh.Name, strings.Join(vh.Domains, ","), r.DescribeMatch(), RouteDestination(r))
			}
		}
	}
	return section{rows: t, raw: d.Sections[envoy.SectionRoutes]}
}

// RouteDestination is where a route sends requests.
func RouteDestination(r envoy.Route) string {
	switch {
	case r.Route != nil && r.Route.ClusterHeader != "":
		return "cluster from header " + r.Route.ClusterHeader
	case r.Route != nil:
		var parts []string
		cs := r.Route.Clusters()
		for _, c := range cs {
			if len(cs) == 1 {
				parts = append(parts, c.Name)
			} else {
				parts = append(parts, fmt.Sprintf("%s (weight %d)", c.Name, c.Weight))
			}
		}
		return strings.Join(parts, ", ")
	case r.DirectResponse != nil:
		return "direct response " + strconv.Itoa(r.DirectResponse.Status)
	case len(r.Redirect) > 0:
		return "redirect"
	}
	return "-"
}

// Endpoints has one row per endpoint of each EDS cluster (Weft's
// dynamic ones first).
func Endpoints(d *envoy.ConfigDump) output.Tabular {
	t := output.Rows{Header: []string{"ENDPOINT", "STATUS", "TLS", "CLUSTER"}}
	for _, la := range d.Endpoints {
		for _, e := range la.All() {
			tls := "plaintext"
			if e.TLSMode(generator.TransportSocketMatchKey, generator.TLSModeKey) == generator.TLSModeWeft {
				tls = "mTLS"
			}
			t.Add(e.Endpoint.Address.String(), e.Health(), tls, la.ClusterName)
		}
	}
	return section{rows: t, raw: d.Sections[envoy.SectionEndpoints]}
}

// SecretReport is the secrets the sidecar holds, decoded.
type SecretReport struct {
	Secrets []SecretInfo `json:"secrets"`
}

// SecretInfo is one SDS secret.
type SecretInfo struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
	Updated string `json:"lastUpdated,omitempty"`
	// Certificates are the chain (leaf first) or the trust bundle's roots.
	Certificates []envoy.Cert `json:"certificates"`
	// Valid says whether the SVID chains to the sidecar's trust bundle
	// (ROOTCA) now; Chain names the path or the verification error.
	Valid *bool  `json:"valid,omitempty"`
	Chain string `json:"chain,omitempty"`
	Error string `json:"error,omitempty"`
}

// Secrets decodes the SVID and the trust bundle and verifies the SVID's
// chain against the bundle at now.
func Secrets(d *envoy.ConfigDump, now time.Time) SecretReport {
	var roots []*x509.Certificate
	for _, s := range d.Secrets {
		if s.Kind() == "CA" {
			if certs, err := s.Certificates(); err == nil {
				roots = append(roots, certs...)
			}
		}
	}
	out := SecretReport{Secrets: []SecretInfo{}}
	for _, s := range d.Secrets {
		info := SecretInfo{Name: s.Name, Type: s.Kind(), Status: s.State, Version: s.VersionInfo, Updated: s.LastUpdated}
		certs, err := s.Certificates()
		if err != nil {
			info.Error = err.Error()
		}
		for _, c := range certs {
			info.Certificates = append(info.Certificates, envoy.Summarize(c))
		}
		if info.Type == "Cert Chain" && len(certs) > 0 {
			ok, chain := verify(certs, roots, now)
			info.Valid, info.Chain = &ok, chain
		}
		out.Secrets = append(out.Secrets, info)
	}
	sort.SliceStable(out.Secrets, func(i, j int) bool { return out.Secrets[i].Type > out.Secrets[j].Type })
	return out
}

func verify(chain, roots []*x509.Certificate, now time.Time) (bool, string) {
	if len(roots) == 0 {
		return false, "no trust bundle (ROOTCA) to verify against"
	}
	rp, ip := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		rp.AddCert(r)
	}
	for _, c := range chain[1:] {
		ip.AddCert(c)
	}
	paths, err := chain[0].Verify(x509.VerifyOptions{Roots: rp, Intermediates: ip, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return false, "does not verify: " + err.Error()
	}
	var names []string
	for _, c := range paths[0][1:] {
		names = append(names, fmt.Sprintf("%s (serial %s)", c.Subject.String(), envoy.Serial(c)))
	}
	return true, "leaf → " + strings.Join(names, " → ")
}

// WriteTable prints one row per certificate.
func (r SecretReport) WriteTable(w io.Writer) error {
	t := output.Rows{Header: []string{"NAME", "TYPE", "STATUS", "IDENTITY", "SERIAL", "NOT AFTER", "CHAIN"}}
	for _, s := range r.Secrets {
		if s.Error != "" {
			t.Add(s.Name, s.Type, s.Status, "-", "-", "-", s.Error)
			continue
		}
		for i, c := range s.Certificates {
			id := c.SPIFFEID
			if id == "" {
				id = c.Subject
			}
			chain := "-"
			switch {
			case i == 0 && s.Chain != "":
				chain = s.Chain
			case i == 0 && s.Type == "CA":
				chain = fmt.Sprintf("trust bundle (%d root(s))", len(s.Certificates))
			}
			t.Add(s.Name, s.Type, s.Status, id, c.Serial, c.NotAfter.Format(time.RFC3339), chain)
		}
	}
	return t.Write(w)
}

// Identity is the SPIFFE ID of the sidecar's SVID ("default" secret).
func (r SecretReport) Identity() string {
	for _, s := range r.Secrets {
		if s.Name == generator.SecretDefault && len(s.Certificates) > 0 {
			return s.Certificates[0].SPIFFEID
		}
	}
	return ""
}
