package local

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeconfigUsers are the client identities of the control plane and the
// admin; each kubelet gets system:node:<name> in addition (Node authorizer).
var kubeconfigUsers = map[string]certRequest{
	"admin":                   {CN: "kubernetes-admin", Orgs: []string{"system:masters"}, Client: true},
	"kube-controller-manager": {CN: "system:kube-controller-manager", Client: true},
	"kube-scheduler":          {CN: "system:kube-scheduler", Client: true},
}

// writeKubeconfig writes a kubeconfig for one client certificate.
func writeKubeconfig(path, server string, caPEM, certPEM, keyPEM []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["weft-local"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["weft-local"] = &clientcmdapi.Context{Cluster: "weft-local", AuthInfo: "user"}
	cfg.CurrentContext = "weft-local"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// writeKubeconfigs writes the control plane's and the admin's kubeconfigs;
// the admin one also goes to .cache/cluster/kubeconfig for users and tests.
func writeKubeconfigs(c Config, ca *authority, now time.Time) error {
	for name, req := range kubeconfigUsers {
		crt, key, err := ca.issue(req, now)
		if err != nil {
			return err
		}
		if err := writeKubeconfig(c.kubeconfig(name), APIServerURL(), ca.certPEM, crt, key); err != nil {
			return err
		}
		if name == "admin" {
			if err := writeKubeconfig(c.KubeconfigPath(), APIServerURL(), ca.certPEM, crt, key); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeNodeCredentials writes a kubelet's kubeconfig (system:node:<name>) and
// its serving certificate for the node IP, so API server → kubelet (logs,
// exec, port-forward) is verified TLS.
func writeNodeCredentials(c Config, n Node, ca *authority, now time.Time) error {
	crt, key, err := ca.issue(certRequest{CN: "system:node:" + n.Name, Orgs: []string{"system:nodes"}, Client: true}, now)
	if err != nil {
		return err
	}
	if err := writeKubeconfig(filepath.Join(n.kubeletDir(), "kubeconfig"), APIServerURL(), ca.certPEM, crt, key); err != nil {
		return err
	}
	crt, key, err = ca.issue(certRequest{CN: n.Name, IPs: []string{n.IP}, DNS: []string{n.Name}, Server: true}, now)
	if err != nil {
		return err
	}
	pki := filepath.Join(n.kubeletDir(), "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", pki, err)
	}
	for name, data := range map[string][]byte{"kubelet.crt": crt, "kubelet.key": key} {
		if err := os.WriteFile(filepath.Join(pki, name), data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}
