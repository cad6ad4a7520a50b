package generator_test

import (
	"context"
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/generator/envoytest"
	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
)

const ns = "shop"

// world is one scenario: cluster state and the proxy whose config is
// generated.
type world struct {
	opts     generator.Options
	services []*model.Service
	slices   []*model.EndpointSlice
	pods     []*model.Pod
	policies []*model.TLSPolicy
	objects  model.Objects
	proxy    *model.Pod
}

func (w world) view() *model.View {
	return model.NewViewWith(model.StoreConfig{RootNamespace: "weft-system"}, w.services, w.slices, w.pods, w.policies, w.objects)
}

var (
	productpage = mt.Pod(ns, "productpage-1", "productpage", "10.0.1.10", "productpage", true)
	reviews1    = mt.Pod(ns, "reviews-1", "reviews", "10.0.2.10", "reviews", true)
	reviews2    = mt.Pod(ns, "reviews-2", "reviews", "10.0.2.11", "reviews", true)
	legacy      = mt.Pod(ns, "legacy-1", "default", "10.0.3.10", "reviews", false)
	reviewsSvc  = mt.Service(ns, "reviews", "10.96.0.20", "reviews", mt.Port("http", 9080, 9080))
)

func scenarios() map[string]world {
	catalog := mt.Pod(ns, "catalog-1", "catalog", "10.0.4.10", "catalog", true)
	catalog.ContainerPorts = map[string]int32{"metrics": 9102}
	metrics := mt.Port("metrics", 9100, 0)
	metrics.TargetPortName, metrics.AppProtocol = "metrics", "http"
	udp := mt.Port("dns", 53, 53)
	udp.Protocol = "UDP"
	h2c := mt.Port("custom", 7070, 7070)
	h2c.AppProtocol = "kubernetes.io/h2c"
	catalogSvc := mt.Service(ns, "catalog", "10.96.0.30", "catalog",
		mt.Port("http", 80, 8080), mt.Port("grpc-api", 9090, 9090), mt.Port("postgres", 5432, 5432), metrics, udp, h2c)

	db0 := mt.Pod(ns, "db-0", "db", "10.0.5.10", "db", true)
	db1 := mt.Pod(ns, "db-1", "db", "10.0.5.11", "db", true)
	db2 := mt.Pod(ns, "db-2", "db", "10.0.5.12", "db", false)
	dbSvc := mt.Service(ns, "db", "None", "db", mt.Port("tcp-postgres", 5432, 5432))
	dbAlias := mt.Service(ns, "db-alias", "None", "db", mt.Port("tcp-postgres", 5432, 5432), mt.Port("http-admin", 8080, 8080))

	cache1 := mt.Pod(ns, "cache-1", "cache", "10.0.6.10", "cache", true)
	cache2 := mt.Pod(ns, "cache-2", "cache", "10.0.6.11", "cache", true)
	cache2.Labels["tier"] = "plaintext"
	cacheSvc := mt.Service(ns, "cache", "10.96.0.40", "cache", mt.Port("redis", 6379, 6379))
	webSvc := mt.Service(ns, "web", "10.96.0.50", "reviews", mt.Port("http-web", 80, 9080))

	otherPrivate := mt.Service("other", "private", "10.96.1.1", "x", mt.Port("http", 80, 80))
	otherPrivate.ExportTo = []string{"."}
	otherShared := mt.Service("other", "shared", "10.96.1.2", "x", mt.Port("http", 80, 80))
	otherShared.ExportTo = []string{"shop"}
	otherPublic := mt.Service("other", "public", "10.96.1.3", "x", mt.Port("tcp", 443, 443))

	basic := []*model.Pod{productpage, reviews1, reviews2, legacy}
	out := map[string]world{
		"one-service": {
			opts:     generator.Options{ReadinessListener: true},
			services: []*model.Service{reviewsSvc},
			slices:   []*model.EndpointSlice{mt.Slice(reviewsSvc, reviews1, reviews2)},
			pods:     basic,
			proxy:    reviews1,
		},
		"many-ports": {
			services: []*model.Service{catalogSvc},
			slices:   []*model.EndpointSlice{mt.Slice(catalogSvc, catalog)},
			pods:     []*model.Pod{catalog},
			proxy:    catalog,
		},
		"headless": {
			services: []*model.Service{dbSvc, dbAlias},
			slices:   []*model.EndpointSlice{mt.Slice(dbSvc, db0, db1, db2), mt.Slice(dbAlias, db0)},
			pods:     []*model.Pod{productpage, db0, db1, db2},
			proxy:    productpage,
		},
		"tcp-vs-http": {
			services: []*model.Service{webSvc, cacheSvc},
			slices:   []*model.EndpointSlice{mt.Slice(webSvc, reviews1, legacy), mt.Slice(cacheSvc, cache1, cache2)},
			pods:     []*model.Pod{productpage, reviews1, legacy, cache1, cache2},
			policies: []*model.TLSPolicy{mt.Policy(ns, "cache-plaintext", map[string]string{"tier": "plaintext"}, model.MTLSDisable, nil)},
			proxy:    productpage,
		},
		"strict": {
			services: []*model.Service{reviewsSvc},
			slices:   []*model.EndpointSlice{mt.Slice(reviewsSvc, reviews1, reviews2)},
			pods:     basic,
			policies: []*model.TLSPolicy{
				mt.Policy("weft-system", "mesh", nil, model.MTLSPermissive, nil),
				mt.Policy(ns, "shop-strict", nil, model.MTLSStrict, nil),
			},
			proxy: reviews1,
		},
		"permissive-port-override": {
			services: []*model.Service{reviewsSvc},
			slices:   []*model.EndpointSlice{mt.Slice(reviewsSvc, reviews1, reviews2)},
			pods:     basic,
			policies: []*model.TLSPolicy{
				mt.Policy("weft-system", "mesh", nil, model.MTLSStrict, nil),
				mt.Policy(ns, "reviews", map[string]string{"app": "reviews"}, model.MTLSUnset,
					map[int32]model.MTLSMode{9080: model.MTLSPermissive}),
			},
			proxy: reviews1,
		},
		"visibility": {
			services: []*model.Service{otherPrivate, otherShared, otherPublic},
			pods:     []*model.Pod{productpage},
			proxy:    productpage,
		},
	}
	for name, w := range trafficScenarios() {
		out[name] = w
	}
	return out
}

// validateWithEnvoy runs `envoy --mode validate` on the generated config,
// with the resources from xDS and inline. It is a subtest of its own, so a
// machine without Envoy reports it skipped instead of passing it silently.
func validateWithEnvoy(t *testing.T, envoy string, haveEnvoy bool, proxy *model.Pod, res *generator.Resources) {
	t.Helper()
	t.Run("envoy validate", func(t *testing.T) {
		if !haveEnvoy {
			t.Skip("no envoy binary (make envoy)")
		}
		nodeID := generator.NodeID(proxy.Namespace, proxy.Name)
		for _, inline := range []bool{false, true} {
			out, err := envoytest.Validate(context.Background(), envoy, t.TempDir(), envoytest.Bootstrap(nodeID, res, inline))
			if err != nil {
				t.Fatalf("envoy rejected the config (inline=%v): %v\n%s", inline, err, out)
			}
		}
	})
}

func TestGenerateGolden(t *testing.T) {
	envoy, haveEnvoy := envoytest.Binary()
	for name, w := range scenarios() {
		t.Run(name, func(t *testing.T) {
			res, err := generator.Generate(w.opts, w.view(), w.proxy)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, name, goldenJSON(t, res))
			checkConsistent(t, res)
			validateWithEnvoy(t, envoy, haveEnvoy, w.proxy, res)
		})
	}
}

func checkConsistent(t *testing.T, res *generator.Resources) {
	t.Helper()
	snap, err := cache.NewSnapshot("1", map[resource.Type][]types.Resource{
		resource.ListenerType: toResources(res.Listeners),
		resource.ClusterType:  toResources(res.Clusters),
		resource.RouteType:    toResources(res.Routes),
		resource.EndpointType: toResources(res.Endpoints),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Consistent(); err != nil {
		t.Fatalf("snapshot not consistent: %v", err)
	}
}

func toResources[T types.Resource](in []T) []types.Resource {
	out := make([]types.Resource, len(in))
	for i, r := range in {
		out[i] = r
	}
	return out
}

func listener(t *testing.T, res *generator.Resources, name string) *listenerv3.Listener {
	t.Helper()
	for _, l := range res.Listeners {
		if l.GetName() == name {
			return l
		}
	}
	t.Fatalf("no listener %q", name)
	return nil
}

// chainNames lists the filter chains of a listener, to state the
// behaviour that golden files only show.
func chainNames(l *listenerv3.Listener) string {
	var names []string
	for _, fc := range l.GetFilterChains() {
		names = append(names, fc.GetName())
	}
	return strings.Join(names, " ")
}

func TestInboundModes(t *testing.T) {
	sc := scenarios()
	for _, tc := range []struct {
		scenario, want string
	}{
		{"one-service", "inbound|9080||mtls inbound|9080||app-tls inbound|9080||plaintext " +
			"inbound|passthrough||mtls inbound|passthrough||app-tls inbound|passthrough||plaintext"},
		{"strict", "inbound|9080||mtls inbound|passthrough||mtls"},
		{"permissive-port-override", "inbound|9080||mtls inbound|9080||app-tls inbound|9080||plaintext inbound|passthrough||mtls"},
	} {
		w := sc[tc.scenario]
		res, err := generator.Generate(generator.Options{}, w.view(), w.proxy)
		if err != nil {
			t.Fatal(err)
		}
		if got := chainNames(listener(t, res, generator.ListenerInbound)); got != tc.want {
			t.Errorf("%s: inbound chains\n got %s\nwant %s", tc.scenario, got, tc.want)
		}
	}
}

func TestOutboundScoping(t *testing.T) {
	w := scenarios()["visibility"]
	res, err := generator.Generate(generator.Options{}, w.view(), w.proxy)
	if err != nil {
		t.Fatal(err)
	}
	got := chainNames(listener(t, res, generator.ListenerOutbound))
	want := "outbound|443||public.other.svc.cluster.local outbound|80||shared.other.svc.cluster.local"
	if got != want {
		t.Errorf("outbound chains\n got %s\nwant %s", got, want)
	}
}

func TestHeadlessSkipsUnmeshedAndDuplicates(t *testing.T) {
	w := scenarios()["headless"]
	res, err := generator.Generate(generator.Options{}, w.view(), w.proxy)
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, fc := range listener(t, res, generator.ListenerOutbound).GetFilterChains() {
		for _, r := range fc.GetFilterChainMatch().GetPrefixRanges() {
			prefixes = append(prefixes, fc.GetName()+"="+r.GetAddressPrefix())
		}
	}
	// db-0:5432 is claimed by db (sorted first); db-alias keeps its own port
	// 8080; db-2 has no sidecar and is left to the passthrough.
	want := "outbound|5432||db.shop.svc.cluster.local=10.0.5.10 outbound|5432||db.shop.svc.cluster.local=10.0.5.11 " +
		"outbound|8080||db-alias.shop.svc.cluster.local=10.0.5.10"
	if got := strings.Join(prefixes, " "); got != want {
		t.Errorf("headless chains\n got %s\nwant %s", got, want)
	}
}

func TestNodeID(t *testing.T) {
	id := generator.NodeID("shop", "web.v1-abc")
	ns, pod, err := generator.ParseNodeID(id)
	if err != nil || ns != "shop" || pod != "web.v1-abc" {
		t.Fatalf("ParseNodeID(%q) = %q, %q, %v", id, ns, pod, err)
	}
	for _, bad := range []string{"", "nodot", ".shop", "pod."} {
		if _, _, err := generator.ParseNodeID(bad); err == nil {
			t.Errorf("ParseNodeID(%q) accepted", bad)
		}
	}
}

func TestBadTrustDomain(t *testing.T) {
	w := scenarios()["one-service"]
	if _, err := generator.Generate(generator.Options{TrustDomain: "Not A Domain"}, w.view(), w.proxy); err == nil {
		t.Fatal("invalid trust domain accepted")
	}
}

// TestEnvoyValidateRejects is the negative control for TestGenerateGolden:
// the validation harness must fail on config Envoy rejects.
func TestEnvoyValidateRejects(t *testing.T) {
	envoy, ok := envoytest.Binary()
	if !ok {
		t.Skip("no envoy binary (make envoy)")
	}
	w := scenarios()["one-service"]
	res, err := generator.Generate(generator.Options{}, w.view(), w.proxy)
	if err != nil {
		t.Fatal(err)
	}
	b := envoytest.Bootstrap("reviews-1.shop", res, true)
	b.StaticResources.Listeners[0].Address.GetSocketAddress().Address = "not-an-ip"
	out, err := envoytest.Validate(context.Background(), envoy, t.TempDir(), b)
	if err == nil || !strings.Contains(out, "not-an-ip") {
		t.Fatalf("envoy accepted a malformed listener address (err %v):\n%s", err, out)
	}
}
