package main

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"

	"github.com/containernetworking/plugins/pkg/ns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/weftmesh/weft/api/annotation"
)

// newMeshedSubject is weft-bridge chained with weft-redirect for a meshed
// pod. weft-redirect's pod lookup goes to a fake API server: a TLS server
// in the subject's node namespace answering the pod GET with a pod that
// carries the injector's default sidecar status. So the timing includes
// weft-redirect's real client-go round trip and iptables work, but not an
// API server's or etcd's latency. Between rounds the pod's nat table is
// emptied (untimed), so every ADD programs a fresh namespace.
func newMeshedSubject(weftBin, bridgeConf, work string) (*subject, error) {
	s, err := newSubject("weft-bridge+weft-redirect", weftBin,
		stage{plugin: filepath.Join(weftBin, "weft-bridge"), conf: []byte(bridgeConf)},
		stage{plugin: filepath.Join(weftBin, "weft-redirect")})
	if err != nil {
		return nil, err
	}
	var ln net.Listener
	if err := s.node.Do(func(ns.NetNS) (err error) { ln, err = net.Listen("tcp4", "127.0.0.1:0"); return err }); err != nil {
		return nil, fmt.Errorf("listen in %s: %w (close: %w)", s.node.Name, err, s.close())
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(servePod))
	srv.Listener = ln
	srv.StartTLS()
	s.stop = srv.Close
	kubeconfig := filepath.Join(work, "weft-kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["bench"] = &clientcmdapi.Cluster{Server: srv.URL,
		CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})}
	cfg.AuthInfos["bench"] = &clientcmdapi.AuthInfo{Token: "bench-token"}
	cfg.Contexts["bench"] = &clientcmdapi.Context{Cluster: "bench", AuthInfo: "bench"}
	cfg.CurrentContext = "bench"
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		return nil, fmt.Errorf("write kubeconfig: %w (close: %w)", err, s.close())
	}
	s.stages[1].conf = fmt.Appendf(nil, `{"cniVersion":"1.0.0","name":"bench","type":"weft-redirect","kubeconfig":%q}`, kubeconfig)
	s.args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=meshed"
	s.reset = func(s *subject) error {
		_, err := s.pod.Run("sh", "-c", "iptables -t nat -S WEFT-OUTPUT >/dev/null && iptables -t nat -F && iptables -t nat -X")
		return err
	}
	return s, nil
}

// servePod answers every request with the meshed pod.
func servePod(w http.ResponseWriter, _ *http.Request) {
	st := annotation.SidecarStatus{
		Version: annotation.StatusVersion, Image: "weft.local/sidecar:dev", Revision: annotation.DefaultRevision,
		ProxyUID: annotation.ProxyUID, ProxyGID: annotation.ProxyGID,
		OutboundPort: annotation.OutboundCapturePort, InboundPort: annotation.InboundCapturePort,
		IncludeInboundPorts: annotation.CaptureAllInbound, ExcludeInboundPorts: annotation.RequiredExcludedInboundPorts(),
	}
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "meshed", Annotations: map[string]string{annotation.StatusAnnotation: st.String()}},
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(pod); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
