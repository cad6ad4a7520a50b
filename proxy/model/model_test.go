package model

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func svc(mod func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: "10.96.0.5", ClusterIPs: []string{"10.96.0.5"},
			Ports: []v1.ServicePort{{Name: "p", Protocol: v1.ProtocolTCP, Port: 80}}},
	}
	mod(s)
	return s
}

func TestServicePortsSkipsWhatItCannotProgram(t *testing.T) {
	for _, tc := range []struct {
		name      string
		svc       *v1.Service
		wantPorts int
		wantErr   string
	}{
		{"plain", svc(func(*v1.Service) {}), 1, ""},
		{"headless", svc(func(s *v1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"} }), 0, ""},
		{"external name", svc(func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeExternalName }), 0, ""},
		{"other proxy", svc(func(s *v1.Service) { s.Labels = map[string]string{ProxyNameLabel: "x"} }), 0, ""},
		{"IPv6 only", svc(func(s *v1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "fd00::5", []string{"fd00::5"} }), 0, "only IPv4"},
		{"dual stack uses the IPv4 address", svc(func(s *v1.Service) { s.Spec.ClusterIPs = []string{"fd00::5", "10.96.0.5"} }), 1, ""},
		{"SCTP without kernel support", svc(func(s *v1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: "s", Protocol: v1.ProtocolSCTP, Port: 9})
		}), 1, "SCTP"},
		{"bad source range fails closed", svc(func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"nonsense"} }), 0, "source range"},
	} {
		ports, err := ServicePorts(tc.svc, Protocols{})
		if len(ports) != tc.wantPorts {
			t.Errorf("%s: %d ports, want %d", tc.name, len(ports), tc.wantPorts)
		}
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestCategorizeFallsBackToTerminating(t *testing.T) {
	ready := Endpoint{Ready: true, Serving: true}
	term := Endpoint{Serving: true, Terminating: true}
	localTerm := Endpoint{Serving: true, Terminating: true, Local: true}
	p := &ServicePort{ExternalLocal: true, NodePort: 30000}
	c := Categorize(p, []Endpoint{ready, localTerm})
	if len(c.Cluster) != 1 || !c.Cluster[0].Ready {
		t.Errorf("cluster endpoints %v: want only the ready one", c.Cluster)
	}
	if len(c.Local) != 1 || !c.Local[0].Local || len(c.Reachable) != 2 || !c.Any {
		t.Errorf("local %v reachable %v: want the local terminating endpoint used and both reachable", c.Local, c.Reachable)
	}
	c = Categorize(&ServicePort{}, []Endpoint{term, {}})
	if len(c.Cluster) != 1 || !c.Cluster[0].Terminating {
		t.Errorf("no ready endpoint: cluster = %v, want the serving terminating one", c.Cluster)
	}
}

func TestTrackerRecordsOnlyAnnotatedTriggerTimes(t *testing.T) {
	start := time.Unix(1000, 0)
	tr := NewTracker(TrackerConfig{NodeName: "n", Now: func() time.Time { return start }})
	slice := func(name, trigger string) *discovery.EndpointSlice {
		s := &discovery.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name,
			Labels: map[string]string{discovery.LabelServiceName: "s"}}, AddressType: discovery.AddressTypeIPv4}
		if trigger != "" {
			s.Annotations = map[string]string{TriggerTimeAnnotation: trigger}
		}
		return s
	}
	tr.SetSlice(slice("a", ""))
	tr.SetSlice(slice("b", start.Add(-time.Minute).Format(time.RFC3339Nano))) // before start-up
	tr.SetSlice(slice("c", start.Add(time.Second).Format(time.RFC3339Nano)))
	got := tr.Take().Triggers[types.NamespacedName{Namespace: "ns", Name: "s"}]
	if len(got) != 1 || !got[0].Equal(start.Add(time.Second)) {
		t.Errorf("trigger times = %v, want only the one after start-up", got)
	}
}
