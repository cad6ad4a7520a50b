package node

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// inClusterLike is what rest.InClusterConfig returns: token and CA as
// files of the projected ServiceAccount volume.
func inClusterLike(t *testing.T) (*rest.Config, string) {
	t.Helper()
	dir := t.TempDir()
	token, ca := filepath.Join(dir, "token"), filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(token, []byte("token-1\n"), 0o600))
	require.NoError(t, os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644))
	return &rest.Config{Host: "https://172.20.0.1:6443", BearerToken: "token-0", BearerTokenFile: token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: ca}}, token
}

func TestKubeconfigWriterFollowsToken(t *testing.T) {
	rc, tokenFile := inClusterLike(t)
	confDir := t.TempDir()
	w := NewKubeconfigWriter(confDir, rc)
	path := filepath.Join(confDir, KubeconfigName)

	wrote, err := w.Write()
	require.NoError(t, err)
	assert.True(t, wrote)
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "it holds a token")

	// weft-redirect loads it as any client would.
	loaded, err := clientcmd.BuildConfigFromFlags("", path)
	require.NoError(t, err)
	assert.Equal(t, "https://172.20.0.1:6443", loaded.Host)
	assert.Equal(t, "token-1", loaded.BearerToken, "the file, not the token read at start")
	assert.Contains(t, string(loaded.CAData), "MIIB")

	wrote, err = w.Write()
	require.NoError(t, err)
	assert.False(t, wrote, "unchanged")

	require.NoError(t, os.WriteFile(tokenFile, []byte("token-2"), 0o600)) // the kubelet rotated it
	wrote, err = w.Write()
	require.NoError(t, err)
	assert.True(t, wrote)
	loaded, err = clientcmd.BuildConfigFromFlags("", path)
	require.NoError(t, err)
	assert.Equal(t, "token-2", loaded.BearerToken)
}

func TestPluginKubeconfigErrors(t *testing.T) {
	_, err := PluginKubeconfig(&rest.Config{Host: "https://x"})
	require.EqualError(t, err, "the client config has neither a bearer token nor a client certificate to hand to weft-redirect")
	_, err = PluginKubeconfig(&rest.Config{Host: "https://x", BearerTokenFile: "/nonexistent/token"})
	require.ErrorContains(t, err, "read token: open /nonexistent/token")

	out, err := PluginKubeconfig(&rest.Config{Host: "https://x", TLSClientConfig: rest.TLSClientConfig{
		CertData: []byte("cert"), KeyData: []byte("key"), Insecure: true}})
	require.NoError(t, err, "a developer's client-certificate kubeconfig works too")
	cfg, err := clientcmd.Load(out)
	require.NoError(t, err)
	assert.Equal(t, []byte("cert"), cfg.AuthInfos["weft-cni-node"].ClientCertificateData)
	assert.True(t, cfg.Clusters["weft"].InsecureSkipTLSVerify)
}
