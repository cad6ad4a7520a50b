// Package install renders Weft's Kubernetes manifests from one set of values
// and applies them with server-side apply. The local cluster, `meshctl
// install` and the e2e suite all install Weft through it.
package install

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"text/template"

	meshv1alpha1 "github.com/weftmesh/weft/api/v1alpha1"
	"github.com/weftmesh/weft/install/gatewayapi"
	"sigs.k8s.io/yaml"
)

//go:embed manifests/*.yaml
var manifests embed.FS

// Components says which parts to install. A cluster that keeps its own CNI
// and kube-proxy installs only the mesh.
type Components struct {
	CNI   bool `json:"cni"`   // weft-cni-node: the pod network
	Proxy bool `json:"proxy"` // weft-proxy: Service VIPs (kube-proxy replacement)
	DNS   bool `json:"dns"`   // CoreDNS as kube-dns (local cluster only; real clusters bring theirs)
	Mesh  bool `json:"mesh"`  // pilot (CA + xDS) and the sidecar injector
}

// CNIValues are host paths of the pod network's files.
type CNIValues struct {
	BinDir  string `json:"binDir"`  // plugin binaries
	ConfDir string `json:"confDir"` // the conflist; with PerNodeDirs, the directory holding <node>/cni/net.d
	// IPAMDir is the data dir written into the conflist; it may contain
	// $(NODE_NAME), which Kubernetes expands in container args.
	IPAMDir string `json:"ipamDir"`
	// IPAMMount is a host directory containing IPAMDir, mounted at the same
	// path in weft-cni-node so it can garbage-collect allocations.
	IPAMMount string `json:"ipamMount"`
	// PerNodeDirs is for clusters whose nodes share one filesystem (the local
	// cluster): each node's conf dir is <ConfDir>/<node>/cni/net.d.
	PerNodeDirs bool `json:"perNodeDirs"`
}

// Values parameterise the manifests. They read and write as YAML/JSON
// (a values file, as with Helm); unset fields keep Defaults().
type Values struct {
	Registry    string `json:"registry"`
	Tag         string `json:"tag"`
	PullPolicy  string `json:"pullPolicy"`
	ClusterCIDR string `json:"clusterCIDR"`
	ServiceCIDR string `json:"serviceCIDR"`
	// APIServerHost/Port, when set, point node agents straight at the API
	// server (they start before any Service VIP works), as Cilium does.
	APIServerHost string     `json:"apiServerHost,omitempty"`
	APIServerPort string     `json:"apiServerPort,omitempty"`
	DNSServiceIP  string     `json:"dnsServiceIP"`
	ClusterDomain string     `json:"clusterDomain"`
	TrustDomain   string     `json:"trustDomain"` // SPIFFE trust domain of workload identities
	Components    Components `json:"components"`
	CNI           CNIValues  `json:"cni"`
}

// ReadValues overlays a YAML or JSON values file on Defaults(); unknown
// fields are errors, so a typo does not silently install defaults.
func ReadValues(data []byte) (Values, error) {
	v := Defaults()
	if err := yaml.UnmarshalStrict(data, &v); err != nil {
		return Values{}, fmt.Errorf("values: %w", err)
	}
	return v, nil
}

// Defaults are the values for an ordinary cluster.
func Defaults() Values {
	return Values{
		Registry: "weft.local", Tag: "dev", PullPolicy: "IfNotPresent",
		ClusterCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/16",
		DNSServiceIP: "10.96.0.10", ClusterDomain: "cluster.local", TrustDomain: "cluster.local",
		Components: Components{CNI: true, Proxy: true, Mesh: true},
		CNI: CNIValues{BinDir: "/opt/cni/bin", ConfDir: "/etc/cni/net.d",
			IPAMDir: "/var/lib/cni/weft", IPAMMount: "/var/lib/cni/weft"},
	}
}

// Image is the reference of one of our images.
func (v Values) Image(name string) string { return fmt.Sprintf("%s/%s:%s", v.Registry, name, v.Tag) }

// APIServerEnv renders the env entries that bypass the kubernetes Service.
func (v Values) APIServerEnv() string {
	if v.APIServerHost == "" {
		return ""
	}
	const indent = "\n        "
	return indent + "- {name: KUBERNETES_SERVICE_HOST, value: \"" + v.APIServerHost + "\"}" +
		indent + "- {name: KUBERNETES_SERVICE_PORT, value: \"" + v.APIServerPort + "\"}"
}

// Render returns the manifests as one multi-document YAML stream: the CRDs
// of api/v1alpha1 and the pinned Gateway API CRDs (install/gatewayapi)
// first (when the mesh is installed), then the templates in file-name order
// (namespaces first).
func Render(v Values) ([]byte, error) {
	names, err := fs.Glob(manifests, "manifests/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list manifests: %w", err)
	}
	sort.Strings(names)
	var out bytes.Buffer
	if v.Components.Mesh {
		crds, err := meshv1alpha1.CRDs()
		if err != nil {
			return nil, err
		}
		for _, crd := range crds {
			fmt.Fprintf(&out, "---\n# Source: api/v1alpha1/crds\n%s\n", strings.TrimSpace(string(crd)))
		}
		gw, err := gatewayapi.CRDs()
		if err != nil {
			return nil, err
		}
		for _, crd := range gw {
			fmt.Fprintf(&out, "---\n# Source: install/gatewayapi/crds\n%s\n", strings.TrimSpace(string(crd)))
		}
	}
	for _, name := range names {
		text, err := manifests.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		tmpl, err := template.New(name).Option("missingkey=error").Parse(string(text))
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, v); err != nil {
			return nil, fmt.Errorf("render %s: %w", name, err)
		}
		if doc := strings.TrimSpace(buf.String()); doc != "" {
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, doc)
		}
	}
	return out.Bytes(), nil
}
