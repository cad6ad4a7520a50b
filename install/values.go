package install

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

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

// Values parameterise the Helm chart install/helm/weft: their JSON names
// are the chart's values (values.yaml), so a values file works with both
// `meshctl install -f` and `helm install -f`. They read and write as
// YAML/JSON; unset fields keep Defaults().
type Values struct {
	Registry    string `json:"registry"`
	Tag         string `json:"tag"`
	PullPolicy  string `json:"pullPolicy"`
	ClusterCIDR string `json:"clusterCIDR"`
	ServiceCIDR string `json:"serviceCIDR"`
	// APIServerHost/Port, when set, point node agents straight at the API
	// server (they start before any Service VIP works), as Cilium does.
	APIServerHost string `json:"apiServerHost,omitempty"`
	APIServerPort string `json:"apiServerPort,omitempty"`
	DNSServiceIP  string `json:"dnsServiceIP"`
	ClusterDomain string `json:"clusterDomain"`
	TrustDomain   string `json:"trustDomain"` // SPIFFE trust domain of workload identities
	// LogLevel is info or debug; only weft-injector has a debug level (-v).
	LogLevel   string          `json:"logLevel"`
	Components Components      `json:"components"`
	CNI        CNIValues       `json:"cni"`
	Pilot      PilotValues     `json:"pilot"`
	Injector   InjectorValues  `json:"injector"`
	CNINode    WorkloadValues  `json:"cniNode"` // weft-cni-node
	Proxy      WorkloadValues  `json:"proxy"`   // weft-proxy
	DNS        WorkloadValues  `json:"dns"`     // CoreDNS
	Telemetry  TelemetryValues `json:"telemetry"`
}

// TelemetryValues say where Weft's components push telemetry besides the
// Prometheus endpoints they always serve.
type TelemetryValues struct {
	// OTLPEndpoint is an OTLP/gRPC collector URL (http://host:4317), set
	// as OTEL_EXPORTER_OTLP_ENDPOINT on pilot, the injector, weft-cni-node
	// and weft-proxy (pilot/telemetry pushes metrics and traces there), and
	// by the injector on the weft-agent of every sidecar it injects.
	// Empty: nothing is pushed, unless Collector is enabled.
	OTLPEndpoint string `json:"otlpEndpoint"`
	// Collector deploys an OpenTelemetry Collector (weft-otel-collector)
	// with Weft's trace store; components then push to it unless
	// OTLPEndpoint names another collector.
	Collector CollectorValues `json:"collector"`
	Tracing   TracingValues   `json:"tracing"`
	AccessLog AccessLogValues `json:"accessLog"`
	// RequestMetrics is the mesh's default for the sidecars' request
	// metrics (pilot's --request-metrics).
	RequestMetrics RequestMetricsValues `json:"requestMetrics"`
}

// CollectorValues configure weft-otel-collector (docs/observability.md):
// the collector (tools/otelcol) and the trace store beside it in one pod.
type CollectorValues struct {
	Enabled   bool      `json:"enabled"`
	Resources Resources `json:"resources"` // the collector container
	// TraceStore bounds the in-memory trace store
	// (pilot/telemetry/tracestore); the oldest traces are evicted first.
	TraceStore TraceStoreValues `json:"traceStore"`
}

// TraceStoreValues are the trace store's bounds and resources.
type TraceStoreValues struct {
	MaxTraces        int       `json:"maxTraces"`
	MaxSpansPerTrace int       `json:"maxSpansPerTrace"`
	Resources        Resources `json:"resources"`
}

// TracingValues configure the sidecars' Envoy tracer, which reports to the
// chart's collector when it is enabled.
type TracingValues struct {
	// Enabled turns tracing on by default (pilot's --tracing; the chart's
	// default); off, Telemetry resources turn it on where wanted.
	Enabled bool `json:"enabled"`
	// Sampling is the percent (0-100) of requests without a sampled W3C
	// traceparent that start a trace (pilot's --tracing-sampling).
	Sampling float64 `json:"sampling"`
}

// AccessLogValues turn on the sidecars' JSON access logs (pilot's
// --access-log and --access-log-namespaces); the pod label
// telemetry.weft.dev/access-log overrides them per workload.
type AccessLogValues struct {
	Enabled bool `json:"enabled"`
	// Namespaces limits the access log to these namespaces (empty: all).
	Namespaces []string `json:"namespaces"`
}

// RequestMetricsValues switch the request metrics (envoy_weft_requests_total
// and the rest, recorded by the server's sidecar) on or off by default;
// Telemetry resources (spec.metrics) override it per namespace, and
// mesh-wide in weft-system. Envoy's own stats are always on.
type RequestMetricsValues struct {
	Enabled bool `json:"enabled"`
}

// PilotValues configure weft-pilot (CA and xDS).
type PilotValues struct {
	// Replicas above one get a PodDisruptionBudget. Every replica serves
	// the CA and xDS; the one holding the Lease weft-system/weft-pilot
	// alone writes the root, the trust bundles and route/policy status.
	Replicas int `json:"replicas"`
	// WorkloadCertTTL is pilot's --cert-ttl and --max-cert-ttl (a Go
	// duration): the lifetime of workload SVIDs. Sidecars request 24h, so
	// only shorter values change it.
	WorkloadCertTTL string `json:"workloadCertTTL"`
	// RootCertTTL is the lifetime of the self-signed root pilot generates
	// (--root-ttl) when no operator CA Secret (cacerts) exists.
	RootCertTTL string    `json:"rootCertTTL"`
	Resources   Resources `json:"resources"`
}

// InjectorValues configure weft-injector.
type InjectorValues struct {
	// Replicas above one get a PodDisruptionBudget; replicas share the
	// serving certificate Secret with optimistic concurrency.
	Replicas  int       `json:"replicas"`
	Resources Resources `json:"resources"`
}

// WorkloadValues configure a component that has nothing but resources to set.
type WorkloadValues struct {
	Resources Resources `json:"resources"`
}

// Resources are a container's requests and limits, as Kubernetes
// quantities; an empty string leaves one unset.
type Resources struct {
	Requests ResourceList `json:"requests"`
	Limits   ResourceList `json:"limits"`
}

// ResourceList holds the CPU and memory quantities of requests or limits.
type ResourceList struct {
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
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

// Defaults are the values for an ordinary cluster; the chart's values.yaml
// holds the same (a test keeps them equal).
func Defaults() Values {
	return Values{
		Registry: "weft.local", Tag: "dev", PullPolicy: "IfNotPresent",
		ClusterCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/16",
		DNSServiceIP: "10.96.0.10", ClusterDomain: "cluster.local", TrustDomain: "cluster.local",
		LogLevel:   "info",
		Components: Components{CNI: true, Proxy: true, Mesh: true},
		CNI: CNIValues{BinDir: "/opt/cni/bin", ConfDir: "/etc/cni/net.d",
			IPAMDir: "/var/lib/cni/weft", IPAMMount: "/var/lib/cni/weft"},
		Pilot: PilotValues{Replicas: 1, WorkloadCertTTL: "24h", RootCertTTL: "87600h",
			Resources: Resources{Requests: ResourceList{CPU: "50m", Memory: "64Mi"}}},
		Injector: InjectorValues{Replicas: 1,
			Resources: Resources{Requests: ResourceList{CPU: "10m", Memory: "40Mi"}, Limits: ResourceList{Memory: "256Mi"}}},
		CNINode: WorkloadValues{Resources: Resources{Requests: ResourceList{CPU: "10m", Memory: "20Mi"}}},
		Proxy:   WorkloadValues{Resources: Resources{Requests: ResourceList{CPU: "20m", Memory: "30Mi"}}},
		DNS: WorkloadValues{Resources: Resources{Requests: ResourceList{CPU: "10m", Memory: "30Mi"},
			Limits: ResourceList{Memory: "170Mi"}}},
		Telemetry: TelemetryValues{
			Collector: CollectorValues{
				Resources: Resources{Requests: ResourceList{CPU: "20m", Memory: "64Mi"}, Limits: ResourceList{Memory: "256Mi"}},
				TraceStore: TraceStoreValues{MaxTraces: 1000, MaxSpansPerTrace: 1000,
					Resources: Resources{Requests: ResourceList{CPU: "10m", Memory: "32Mi"}, Limits: ResourceList{Memory: "256Mi"}}},
			},
			Tracing:        TracingValues{Enabled: true, Sampling: 1},
			AccessLog:      AccessLogValues{Namespaces: []string{}},
			RequestMetrics: RequestMetricsValues{Enabled: true},
		},
	}
}

// Image is the reference of one of our images (the chart's weft.image).
func (v Values) Image(name string) string { return fmt.Sprintf("%s/%s:%s", v.Registry, name, v.Tag) }
