package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeconfigName is the file weft-cni-node keeps next to the conflist for
// weft-redirect, which runs on the host (started by the runtime) and has no
// credentials of its own. The runtime only reads *.conf, *.conflist and
// *.json files of the conf dir, so it never mistakes it for a network.
const KubeconfigName = "weft-kubeconfig"

// kubeconfigRefresh is how often the kubeconfig is re-rendered. The
// kubelet rotates the projected ServiceAccount token at 80% of its
// lifetime (at least ten minutes), so polling twice a minute hands
// weft-redirect the new token long before the old one expires.
const kubeconfigRefresh = 30 * time.Second

// PluginKubeconfig renders the kubeconfig for weft-redirect from the
// client config weft-cni-node itself uses: the same API server address (in
// the local cluster KUBERNETES_SERVICE_HOST points straight at the API
// server), CA and credentials. Files named by rc (the projected token, the
// CA) are read on every call, so a rotated token is picked up.
func PluginKubeconfig(rc *rest.Config) ([]byte, error) {
	cluster := &clientcmdapi.Cluster{Server: rc.Host, TLSServerName: rc.ServerName, InsecureSkipTLSVerify: rc.Insecure}
	var err error
	if cluster.CertificateAuthorityData, err = dataOrFile(rc.CAData, rc.CAFile); err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	auth := &clientcmdapi.AuthInfo{}
	token, err := dataOrFile([]byte(rc.BearerToken), rc.BearerTokenFile)
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	auth.Token = string(bytes.TrimSpace(token))
	if auth.ClientCertificateData, err = dataOrFile(rc.CertData, rc.CertFile); err != nil {
		return nil, fmt.Errorf("read client certificate: %w", err)
	}
	if auth.ClientKeyData, err = dataOrFile(rc.KeyData, rc.KeyFile); err != nil {
		return nil, fmt.Errorf("read client key: %w", err)
	}
	if auth.Token == "" && len(auth.ClientCertificateData) == 0 {
		return nil, errors.New("the client config has neither a bearer token nor a client certificate to hand to weft-redirect")
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["weft"] = cluster
	cfg.AuthInfos["weft-cni-node"] = auth
	cfg.Contexts["weft"] = &clientcmdapi.Context{Cluster: "weft", AuthInfo: "weft-cni-node"}
	cfg.CurrentContext = "weft"
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("encode kubeconfig: %w", err)
	}
	return out, nil
}

// dataOrFile prefers the file (it may have been rotated) over data.
func dataOrFile(data []byte, file string) ([]byte, error) {
	if file == "" {
		return data, nil
	}
	return os.ReadFile(file)
}

// KubeconfigWriter keeps KubeconfigName in the conf dir up to date.
type KubeconfigWriter struct {
	path   string
	source *rest.Config
}

// NewKubeconfigWriter writes into confDir (the mounted CNI conf dir) what
// PluginKubeconfig renders from source.
func NewKubeconfigWriter(confDir string, source *rest.Config) *KubeconfigWriter {
	return &KubeconfigWriter{path: filepath.Join(confDir, KubeconfigName), source: source}
}

// Write renders the kubeconfig and writes it (mode 0600: it holds a
// token) if it changed; wrote says whether it did.
func (w *KubeconfigWriter) Write() (wrote bool, err error) {
	data, err := PluginKubeconfig(w.source)
	if err != nil {
		return false, err
	}
	if wrote, err = writeFileIfChanged(w.path, data, 0o600); err != nil {
		return false, fmt.Errorf("write %s: %w", w.path, err)
	}
	return wrote, nil
}

// Run re-writes the kubeconfig every kubeconfigRefresh until ctx ends.
// Errors are logged and retried: the previous file stays valid until its
// token expires.
func (w *KubeconfigWriter) Run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	tick := time.NewTicker(kubeconfigRefresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		wrote, err := w.Write()
		if err != nil {
			log.Error(err, "refresh weft-redirect kubeconfig failed", "path", w.path)
		} else if wrote {
			log.Info("refreshed weft-redirect kubeconfig", "path", w.path)
		}
	}
}
