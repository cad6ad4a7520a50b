package xds

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
)

func testServer(t *testing.T) (*Server, *model.Store) {
	t.Helper()
	st := model.NewStore(model.StoreConfig{RootNamespace: "weft-system"})
	testWorld(st)
	s, err := New(Config{Model: st, Authenticator: headerAuthenticator{}})
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

// Versions are content hashes: regenerating the same model from scratch
// gives the same versions, and a change moves only the affected types.
func TestVersionsAreContentHashes(t *testing.T) {
	build := func(st *model.Store) *builtSnapshot {
		t.Helper()
		s, err := New(Config{Model: st, Authenticator: headerAuthenticator{}})
		if err != nil {
			t.Fatal(err)
		}
		v := st.View()
		pod, _ := v.Pod(model.Key{Namespace: ns, Name: "productpage-1"})
		out, err := s.outbound(v, ns)
		if err != nil {
			t.Fatal(err)
		}
		in, err := generator.Inbound(s.cfg.Generator, v, pod)
		if err != nil {
			t.Fatal(err)
		}
		own, err := newPart(in, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := buildSnapshot(out, own)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.snap.Consistent(); err != nil {
			t.Fatalf("merged snapshot inconsistent: %v", err)
		}
		return b
	}
	st1 := model.NewStore(model.StoreConfig{})
	testWorld(st1)
	st2 := model.NewStore(model.StoreConfig{})
	testWorld(st2)
	a, b := build(st1), build(st2)
	if !sameVersions(a, b) {
		t.Fatalf("same model, different versions: %v vs %v", a.versions, b.versions)
	}

	svc, _ := st2.View().Service(model.Key{Namespace: ns, Name: "db"})
	st2.UpsertEndpointSlice(mt.Slice(svc, mt.Pod(ns, "db-1", "db", "10.0.3.99", "db", true)))
	c := build(st2)
	for url, v := range a.versions {
		changed := c.versions[url] != v
		if changed != (shortTypes[url] == "EDS") {
			t.Errorf("%s changed=%v after an endpoint change", shortTypes[url], changed)
		}
	}
}

// Only the Service whose inputs changed gets a new fragment.
func TestFragmentsRebuildOnlyWhatChanged(t *testing.T) {
	s, st := testServer(t)
	f1, err := s.fragmentsFor(st.View())
	if err != nil {
		t.Fatal(err)
	}
	db := model.Key{Namespace: ns, Name: "db"}
	svc, _ := st.View().Service(db)
	st.UpsertEndpointSlice(mt.Slice(svc, mt.Pod(ns, "db-1", "db", "10.0.3.99", "db", true)))
	f2, err := s.fragmentsFor(st.View())
	if err != nil {
		t.Fatal(err)
	}
	for k, f := range f2.bySvc {
		if reused := f1.bySvc[k] == f; reused == (k == db) {
			t.Errorf("%s: reused=%v", k, reused)
		}
	}
	// A policy change touches every Service (modes decide mTLS per endpoint).
	st.UpsertTLSPolicy(mt.Policy(ns, "strict", nil, model.MTLSStrict, nil))
	f3, err := s.fragmentsFor(st.View())
	if err != nil {
		t.Fatal(err)
	}
	for k, f := range f3.bySvc {
		if f2.bySvc[k] == f {
			t.Errorf("%s reused across a policy change", k)
		}
	}
}

// A resource name in both parts is refused rather than silently shadowed.
func TestBuildSnapshotRefusesCollisions(t *testing.T) {
	s, st := testServer(t)
	out, err := s.outbound(st.View(), ns)
	if err != nil {
		t.Fatal(err)
	}
	own, err := newPart(&generator.Resources{Clusters: []*clusterv3.Cluster{{Name: generator.ClusterPassthrough}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buildSnapshot(out, own); err == nil {
		t.Fatal("colliding names accepted")
	}
}

// Routes and TrafficPolicies change only the fragment of the Service they
// attach to; AuthorizationPolicies change no outbound fragment at all.
func TestRoutesAndPoliciesRebuildOnlyTheirService(t *testing.T) {
	s, st := testServer(t)
	f1, err := s.fragmentsFor(st.View())
	if err != nil {
		t.Fatal(err)
	}
	db := model.Key{Namespace: ns, Name: "db"}
	st.UpsertRoute(&model.Route{Kind: model.KindHTTPRoute, Namespace: ns, Name: "r", Generation: 1,
		Parents: []model.ParentRef{{Kind: "Service", Namespace: ns, Name: "db"}},
		Rules:   []model.RouteRule{{Matches: []model.RouteMatch{{}}}}})
	st.UpsertTrafficPolicy(&model.TrafficPolicy{Namespace: ns, Name: "tp", Targets: []string{"db"}, LoadBalancer: "Random"})
	st.UpsertAuthzPolicy(&model.AuthzPolicy{Namespace: ns, Name: "deny-all", Action: model.AuthzAllow})
	f2, err := s.fragmentsFor(st.View())
	if err != nil {
		t.Fatal(err)
	}
	for k, f := range f2.bySvc {
		if reused := f1.bySvc[k] == f; reused == (k == db) {
			t.Errorf("%s: reused=%v", k, reused)
		}
	}
}
