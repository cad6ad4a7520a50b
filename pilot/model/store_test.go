package model_test

import (
	"net/netip"
	"testing"

	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
)

func TestStoreViewsAndEvents(t *testing.T) {
	st := model.NewStore(model.StoreConfig{RootNamespace: "weft-system"})
	var events []model.Event
	st.Subscribe(func(e model.Event) { events = append(events, e) })

	r1 := mt.Pod("shop", "reviews-1", "reviews", "10.0.0.1", "reviews", true)
	plain := mt.Pod("shop", "plain-1", "default", "10.0.0.2", "reviews", false)
	svc := mt.Service("shop", "reviews", "10.96.0.1", "reviews", mt.Port("http", 80, 8080))
	st.UpsertPod(r1)
	st.UpsertPod(plain)
	v1 := st.View()
	st.UpsertService(svc)
	st.UpsertEndpointSlice(mt.Slice(svc, r1, plain))

	if len(events) != 4 || events[2] != (model.Event{Kind: model.KindService, Key: svc.Key()}) {
		t.Fatalf("events = %+v", events)
	}
	if len(v1.Services()) != 0 {
		t.Fatal("an old view changed after a write")
	}
	v2 := st.View()
	if v2 != st.View() {
		t.Error("view not cached between writes")
	}
	if v2.Generation() <= v1.Generation() {
		t.Error("generation did not advance")
	}
	if got := v2.ServiceAccounts(svc); len(got) != 2 || got[0] != "default" || got[1] != "reviews" {
		t.Errorf("service accounts = %v", got)
	}
	if got := v2.ServicesFor(r1); len(got) != 1 || got[0] != svc {
		t.Errorf("services for pod = %v", got)
	}
	// Endpoints without targetRef are matched by IP.
	ep := model.Endpoint{Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.2")}}
	if p, ok := v2.EndpointPod("shop", ep); !ok || p != plain {
		t.Errorf("endpoint pod by IP = %v, %v", p, ok)
	}

	st.DeleteService(svc.Key())
	st.DeletePod(r1.Key())
	v3 := st.View()
	if len(v3.Services()) != 0 || len(v2.Services()) != 1 {
		t.Error("delete not reflected, or leaked into an old view")
	}
	if _, ok := st.Pod(r1.Key()); ok {
		t.Error("deleted pod still found")
	}
}

func TestEmptySelectorSelectsNothing(t *testing.T) {
	svc := mt.Service("shop", "manual", "10.96.0.9", "x")
	svc.Selector = nil
	pod := mt.Pod("shop", "p", "sa", "10.0.0.9", "x", true)
	v := model.NewView(model.StoreConfig{}, []*model.Service{svc}, nil, []*model.Pod{pod}, nil)
	if got := v.ServicesFor(pod); len(got) != 0 {
		t.Fatalf("selector-less service selected a pod: %v", got)
	}
}
