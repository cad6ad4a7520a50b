package generator_test

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weftmesh/weft/pilot/agent"
	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/generator/envoytest"
	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
	"github.com/weftmesh/weft/pilot/telemetry/envoystats"
	"github.com/weftmesh/weft/pilot/xds/xdstest"
)

// Pods of the mesh pair: their names carry ReplicaSet suffixes so the
// workload names (envoystats.WorkloadName) differ from the pod names.
const (
	pairClientPod = "productpage-v1-5d8f7c9b4-x2x7q"
	pairServerPod = "reviews-v1-6c9d8b7f5-k9l2m"
	pairServerIP  = "127.0.0.2" // the server "pod"; the Service's VIP is 127.0.0.1
)

// meshPair is a client sidecar and a server sidecar on loopback, each a
// real Envoy with pilot's generated config (the client's outbound half,
// the server's inbound half), the agent's stats tags and its environment,
// and the SVIDs as static secrets instead of SDS. The client's outbound
// listener port doubles as the Service port, and the server's inbound
// listener port as the target port, so the listeners' original_dst
// matching works without iptables; the inbound cluster is pointed at the
// test's app.
type meshPair struct {
	client, server *envoytest.Envoy
	// serviceURL reaches the Service through the client sidecar, as the
	// client app's redirected connection would.
	serviceURL string
	// podURL reaches the server sidecar directly, as a caller outside
	// the mesh does (plaintext, PERMISSIVE).
	podURL string
	app    *recordingApp
}

// startMeshPair builds and starts the pair for a Service port of the
// given name ("http", "tcp-..."); edit, if set, changes each side's
// generated resources first.
func startMeshPair(t testing.TB, bin, portName string, edit func(*generator.Resources)) *meshPair {
	t.Helper()
	return startMeshPairWith(t, bin, pairConfig{portName: portName, edit: edit})
}

// pairConfig shapes a mesh pair.
type pairConfig struct {
	// portName names the Service port ("http", "tcp-...").
	portName string
	// edit, if set, changes each side's generated resources.
	edit func(*generator.Resources)
	// telemetry is both sides' Options.Telemetry. With tracing on, the
	// client side gets the collector cluster too (Outbound alone does
	// not generate it; a real proxy has it from its inbound half).
	telemetry generator.Telemetry
	// objects are model objects of the pair's world besides its Service,
	// slice and pods (Telemetry resources).
	objects model.Objects
	// runtime, if set, is a static runtime layer of both Envoys
	// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/operations/runtime).
	runtime map[string]any
	// statsFlush is the Envoys' stats flush interval (default 1 s, so
	// that tests see histograms soon). Benchmarks make it long: a flush
	// costs the main thread a burst of CPU that lands in whichever block
	// of requests runs at the time.
	statsFlush time.Duration
}

// startMeshPairWith builds and starts the pair as cfg says.
func startMeshPairWith(t testing.TB, bin string, cfg pairConfig) *meshPair {
	t.Helper()
	return startSharedPairs(t, bin, cfg)[0]
}

// startSharedPairs starts one client sidecar and one server sidecar that
// hold the configs of several pairs side by side, each pair on its own
// ports (listeners after the first are renamed, clusters the configs
// share are kept once). Benchmarks compare configs this way: the same
// two processes serve every variant, so what one pair of processes costs
// more than another (memory layout, threads' placement, measured up to
// 7 µs per request between identical pairs) is not read as the
// difference between variants. All configs must share their runtime and
// stats flush interval.
func startSharedPairs(t testing.TB, bin string, cfgs ...pairConfig) []*meshPair {
	t.Helper()
	client := mt.Pod(ns, pairClientPod, "productpage", "127.0.0.3", "productpage", true)
	server := mt.Pod(ns, pairServerPod, "reviews", pairServerIP, "reviews", true)
	var pairs []*meshPair
	clientRes, serverRes := &generator.Resources{}, &generator.Resources{}
	apps := map[string]uint32{} // inbound cluster → app port
	for i, cfg := range cfgs {
		out, in := freePort(t), freePort(t)
		app := startApp(t)
		svc := mt.Service(ns, "reviews", "127.0.0.1", "reviews", mt.Port(cfg.portName, int32(out), int32(in)))
		w := world{services: []*model.Service{svc}, slices: []*model.EndpointSlice{mt.Slice(svc, server)}, pods: []*model.Pod{client, server}, objects: cfg.objects}
		opts := generator.Options{OutboundPort: out, InboundPort: in, Telemetry: cfg.telemetry}
		c, err := generator.Outbound(opts, w.view(), ns)
		if err != nil {
			t.Fatal(err)
		}
		s, err := generator.Inbound(opts, w.view(), server)
		if err != nil {
			t.Fatal(err)
		}
		// The collector cluster comes with the outbound part; the server's
		// inbound-only config reports to it too.
		for _, cl := range c.Clusters {
			if cl.GetName() == generator.ClusterOTelCollector {
				s = s.Merge(&generator.Resources{Clusters: []*clusterv3.Cluster{cl}})
			}
		}
		if cfg.edit != nil {
			cfg.edit(c)
			cfg.edit(s)
		}
		if i > 0 {
			suffix := "-" + strconv.Itoa(i)
			for _, l := range slices.Concat(c.Listeners, s.Listeners) {
				l.Name += suffix
			}
		}
		clientRes, serverRes = mergeShared(t, clientRes, c), mergeShared(t, serverRes, s)
		apps[generator.InboundClusterName(int32(in))] = app.port
		pairs = append(pairs, &meshPair{
			serviceURL: fmt.Sprintf("http://127.0.0.1:%d", out),
			podURL:     fmt.Sprintf("http://%s:%d", pairServerIP, in),
			app:        app,
		})
	}
	var runtime *bootstrapv3.LayeredRuntime
	if cfgs[0].runtime != nil {
		layer, err := structpb.NewStruct(cfgs[0].runtime)
		if err != nil {
			t.Fatal(err)
		}
		runtime = &bootstrapv3.LayeredRuntime{Layers: []*bootstrapv3.RuntimeLayer{{
			Name: "test", LayerSpecifier: &bootstrapv3.RuntimeLayer_StaticLayer{StaticLayer: layer},
		}}}
	}
	flush := cmp.Or(cfgs[0].statsFlush, time.Second)
	ca, err := xdstest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	td := spiffeid.RequireTrustDomainFromString(generator.DefaultTrustDomain)
	sidecar := func(pod *model.Pod, res *generator.Resources) *envoytest.Envoy {
		id := fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", td.Name(), pod.Namespace, pod.ServiceAccount)
		svid, err := ca.Issue(id, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		b := envoytest.Bootstrap(generator.NodeID(pod.Namespace, pod.Name), res, true)
		b.StatsConfig = envoystats.StatsConfig(envoystats.WorkloadName(pod.Name), pod.Namespace, "")
		b.StatsFlushInterval = durationpb.New(flush) // histograms show after a flush
		b.LayeredRuntime = runtime
		envoytest.StaticSecrets(b, svid.CertPEM, svid.KeyPEM, ca.PEM)
		for cluster, port := range apps {
			envoytest.PointCluster(b, cluster, "127.0.0.1", port)
		}
		p := agent.Pod{Name: pod.Name, Namespace: pod.Namespace, ServiceAccount: pod.ServiceAccount}
		env := append(agent.EnvoyWorkloadEnv(p, td), agent.EnvoyResourceEnv(p, func(string) string { return "" })...)
		return envoytest.Run(t, bin, b, env)
	}
	clientEnvoy, serverEnvoy := sidecar(client, clientRes), sidecar(server, serverRes)
	for _, p := range pairs {
		p.client, p.server = clientEnvoy, serverEnvoy
	}
	return pairs
}

// mergeShared adds o to r, keeping one copy of a cluster or endpoint
// assignment both have; a listener or route table both have, or a shared
// cluster that differs between them, fails the test.
func mergeShared(t testing.TB, r, o *generator.Resources) *generator.Resources {
	t.Helper()
	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range r.Clusters {
		clusters[c.GetName()] = c
	}
	names := map[string]bool{}
	for _, l := range r.Listeners {
		names["listener "+l.GetName()] = true
	}
	for _, rt := range r.Routes {
		names["route "+rt.GetName()] = true
	}
	for _, e := range r.Endpoints {
		names["endpoints "+e.GetClusterName()] = true
	}
	add := &generator.Resources{}
	for _, c := range o.Clusters {
		have, ok := clusters[c.GetName()]
		switch {
		case !ok:
			add.Clusters = append(add.Clusters, c)
		case !proto.Equal(have, c):
			t.Fatalf("cluster %s differs between shared pairs", c.GetName())
		}
	}
	for _, l := range o.Listeners {
		if names["listener "+l.GetName()] {
			t.Fatalf("listener %s twice in shared pairs", l.GetName())
		}
		add.Listeners = append(add.Listeners, l)
	}
	for _, rt := range o.Routes {
		if names["route "+rt.GetName()] {
			t.Fatalf("route table %s twice in shared pairs", rt.GetName())
		}
		add.Routes = append(add.Routes, rt)
	}
	for _, e := range o.Endpoints {
		if !names["endpoints "+e.GetClusterName()] {
			add.Endpoints = append(add.Endpoints, e)
		}
	}
	add.ScopedRoutes = o.ScopedRoutes
	if len(r.ScopedRoutes) > 0 && len(o.ScopedRoutes) > 0 {
		t.Fatalf("scoped routes in more than one shared pair")
	}
	return r.Merge(add)
}

func freePort(t testing.TB) uint32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint32(l.Addr().(*net.TCPAddr).Port)
}

// recordingApp is the server app: it remembers the headers of the last
// request.
type recordingApp struct {
	port uint32
	mu   sync.Mutex
	last http.Header
}

func startApp(t testing.TB) *recordingApp {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &recordingApp{port: uint32(l.Addr().(*net.TCPAddr).Port)}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.last = r.Header.Clone()
		a.mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok\n")
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return a
}

func (a *recordingApp) lastHeaders() http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last.Clone()
}

// sample is one line of /stats/prometheus.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var promLabel = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// scrape reads an Envoy's Prometheus stats of the given metric names.
func scrape(t testing.TB, e *envoytest.Envoy, names ...string) []sample {
	t.Helper()
	body, err := e.Get("/stats/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	var out []sample
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		brace, space := strings.IndexByte(line, '{'), strings.LastIndexByte(line, ' ')
		if strings.HasPrefix(line, "#") || brace < 0 || space < brace {
			continue
		}
		name := line[:brace]
		if !slices.Contains(names, name) {
			continue
		}
		v, err := strconv.ParseFloat(line[space+1:], 64)
		if err != nil {
			t.Fatalf("stats line %q: %v", line, err)
		}
		s := sample{name: name, labels: map[string]string{}, value: v}
		for _, m := range promLabel.FindAllStringSubmatch(line[brace:space], -1) {
			s.labels[m[1]] = m[2]
		}
		out = append(out, s)
	}
	return out
}

// waitSample polls until a sample of name with exactly labels has value
// want (histograms and closed TCP connections show up with a delay), and
// returns every sample of that name for the failure message.
func waitSample(t testing.TB, e *envoytest.Envoy, name string, labels map[string]string, want float64) {
	t.Helper()
	var have []sample
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		have = scrape(t, e, name)
		for _, s := range have {
			if equalLabels(s.labels, labels) && s.value == want {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	var lines []string
	for _, s := range have {
		lines = append(lines, fmt.Sprintf("  %v %v", s.labels, s.value))
	}
	t.Fatalf("no %s = %v with labels\n  %v\nhave:\n%s", name, want, labels, strings.Join(lines, "\n"))
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
