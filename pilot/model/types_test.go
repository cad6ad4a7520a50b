package model_test

import (
	"testing"

	"github.com/weftmesh/weft/pilot/model"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		port model.ServicePort
		want model.Protocol
	}{
		{model.ServicePort{Name: "http"}, model.ProtocolHTTP},
		{model.ServicePort{Name: "http-web"}, model.ProtocolHTTP},
		{model.ServicePort{Name: "HTTP"}, model.ProtocolHTTP},
		{model.ServicePort{Name: "http2"}, model.ProtocolHTTP2},
		{model.ServicePort{Name: "grpc-api"}, model.ProtocolHTTP2},
		{model.ServicePort{Name: "grpcweb"}, model.ProtocolHTTP2},
		{model.ServicePort{Name: "https"}, model.ProtocolTCP},
		{model.ServicePort{Name: "https-admin"}, model.ProtocolTCP},
		{model.ServicePort{Name: "web", AppProtocol: "https"}, model.ProtocolTCP},
		{model.ServicePort{Name: "web", AppProtocol: "kubernetes.io/wss"}, model.ProtocolTCP},
		{model.ServicePort{Name: "web"}, model.ProtocolTCP},
		{model.ServicePort{Name: "tcp-http"}, model.ProtocolTCP},
		{model.ServicePort{Name: ""}, model.ProtocolTCP},
		{model.ServicePort{Name: "http", AppProtocol: "tcp"}, model.ProtocolTCP},
		{model.ServicePort{Name: "db", AppProtocol: "http"}, model.ProtocolHTTP},
		{model.ServicePort{Name: "db", AppProtocol: "kubernetes.io/h2c"}, model.ProtocolHTTP2},
		{model.ServicePort{Name: "db", AppProtocol: "kubernetes.io/ws"}, model.ProtocolHTTP},
		{model.ServicePort{Name: "http", Protocol: "UDP"}, model.ProtocolUnsupported},
		{model.ServicePort{Name: "sctp", Protocol: "SCTP"}, model.ProtocolUnsupported},
	} {
		if got := tc.port.Classify(); got != tc.want {
			t.Errorf("%+v: got %s, want %s", tc.port, got, tc.want)
		}
	}
}

func TestVisibleTo(t *testing.T) {
	for _, tc := range []struct {
		exportTo []string
		ns       string
		want     bool
	}{
		{nil, "any", true},
		{[]string{"*"}, "any", true},
		{[]string{"."}, "shop", true},
		{[]string{"."}, "other", false},
		{[]string{"other"}, "other", true},
		{[]string{"other"}, "third", false},
	} {
		s := &model.Service{Namespace: "shop", ExportTo: tc.exportTo}
		if got := s.VisibleTo(tc.ns); got != tc.want {
			t.Errorf("exportTo %v, ns %s: got %v", tc.exportTo, tc.ns, got)
		}
	}
}

func TestTargetPort(t *testing.T) {
	p := &model.Pod{ContainerPorts: map[string]int32{"web": 8080}}
	for _, tc := range []struct {
		sp   model.ServicePort
		want int32
		ok   bool
	}{
		{model.ServicePort{Port: 80, TargetPort: 9090}, 9090, true},
		{model.ServicePort{Port: 80}, 80, true},
		{model.ServicePort{Port: 80, TargetPortName: "web"}, 8080, true},
		{model.ServicePort{Port: 80, TargetPortName: "missing"}, 0, false},
	} {
		got, ok := p.TargetPort(tc.sp)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%+v: got %d %v", tc.sp, got, ok)
		}
	}
}
