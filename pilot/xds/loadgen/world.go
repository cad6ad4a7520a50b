package main

import (
	"fmt"
	"net/netip"

	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
)

// world is the simulated mesh: M Services, each backed by enough pods that
// every proxy is one of them (so proxies get inbound config too).
type world struct {
	services []*model.Service
	pods     [][]*model.Pod // per service
	proxies  []*model.Pod
}

func addr(base uint32, i int) string {
	a := base + uint32(i)
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}).String()
}

// buildWorld fills st. Every fourth Service is TCP, the rest HTTP.
func buildWorld(st *model.Store, o options) *world {
	perSvc := max(3, (o.proxies+o.services-1)/o.services)
	w := &world{}
	for i := range o.services {
		ns := fmt.Sprintf("ns-%d", i%o.namespaces)
		name := fmt.Sprintf("svc-%d", i)
		port := mt.Port("http", 80, 8080)
		if i%4 == 3 {
			port = mt.Port("tcp-db", 5432, 5432)
		}
		svc := mt.Service(ns, name, addr(0x0a600000, i+1), name, port) // 10.96.0.0/12
		var pods []*model.Pod
		for j := range perSvc {
			pods = append(pods, mt.Pod(ns, fmt.Sprintf("%s-%d", name, j), "sa-"+name,
				addr(0x0a010000, i*perSvc+j+1), name, true)) // 10.1.0.0/16
		}
		st.UpsertService(svc)
		for _, p := range pods {
			st.UpsertPod(p)
		}
		st.UpsertEndpointSlice(mt.Slice(svc, pods...))
		w.services = append(w.services, svc)
		w.pods = append(w.pods, pods)
	}
	for k := range o.proxies {
		w.proxies = append(w.proxies, w.pods[k%o.services][k/o.services])
	}
	return w
}

// change alternately adds and removes an extra endpoint of Service i: the
// kind of EndpointSlice update a rollout or scale event produces.
func (w *world) change(st *model.Store, i, round int) {
	svc := w.services[i]
	pods := w.pods[i]
	if round%2 == 0 {
		extra := mt.Pod(svc.Namespace, svc.Name+"-extra", "sa-"+svc.Name, addr(0x0a800000, i+1), svc.Name, true) // 10.128.0.0/16
		st.UpsertPod(extra)
		pods = append(pods[:len(pods):len(pods)], extra)
	}
	es := mt.Slice(svc, pods...)
	// A new resourceVersion per change, as the API server gives: with
	// -telemetry every change is one network-programming trace.
	es.UID, es.ResourceVersion = "uid-"+svc.Namespace+"-"+svc.Name, fmt.Sprint(round+1)
	st.UpsertEndpointSlice(es)
}
