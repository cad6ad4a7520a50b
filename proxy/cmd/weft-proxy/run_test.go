package main

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/kubernetes"
)

// TestMasterWithoutKubeconfig checks the bootstrap path a DaemonSet uses
// before any Service VIP works: --master plus the pod's service account.
func TestMasterWithoutKubeconfig(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	serviceAccountDir = t.TempDir()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	for name, data := range map[string][]byte{"ca.crt": ca, "token": []byte("t")} {
		if err := os.WriteFile(filepath.Join(serviceAccountDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := newClient("", "https://172.20.0.1:6443")
	if err != nil {
		t.Fatal(err)
	}
	cs, ok := c.(*kubernetes.Clientset)
	if !ok {
		t.Fatalf("client is %T", c)
	}
	if got := cs.CoreV1().RESTClient().Get().URL().Host; got != "172.20.0.1:6443" {
		t.Errorf("API host = %q, want the --master address", got)
	}
}

func TestParseIPs(t *testing.T) {
	ips, err := parseIPs("172.20.0.11, 172.20.0.12")
	if err != nil || len(ips) != 2 {
		t.Errorf("parseIPs = %v, %v", ips, err)
	}
	if _, err := parseIPs("fd00::1"); err == nil {
		t.Error("IPv6 node IP accepted")
	}
}
