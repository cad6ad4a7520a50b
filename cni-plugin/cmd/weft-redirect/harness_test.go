package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/weftmesh/weft/cni-plugin/internal/nstest"
)

// binDir holds weft-bridge and weft-redirect, built by TestMain: the tests
// run them as containerd does, through libcni with CNI_* variables.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "weft-redirect-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		for name, pkg := range map[string]string{"weft-redirect": ".", "weft-bridge": "../weft-bridge"} {
			if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", name, err, out)
				return 1
			}
		}
		binDir = dir
		return m.Run()
	}())
}

const testToken = "test-token"

// fakeAPI serves GET /api/v1/namespaces/{ns}/pods/{name} from a map, for
// the bearer token weft-cni-node would have written; with hang set it
// never answers.
type fakeAPI struct {
	mu    sync.Mutex
	pods  map[string]*corev1.Pod
	hang  bool
	calls int
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls++
	hang := f.hang
	f.mu.Unlock()
	if hang {
		<-r.Context().Done()
		return
	}
	status := func(code int, reason metav1.StatusReason, msg string) {
		writeJSON(w, code, metav1.Status{
			TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status:   metav1.StatusFailure, Reason: reason, Code: int32(code), Message: msg,
		})
	}
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		status(http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized")
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/namespaces/"), "/")
	f.mu.Lock()
	pod, ok := f.pods[parts[0]+"/"+parts[len(parts)-1]]
	f.mu.Unlock()
	if r.Method != http.MethodGet || len(parts) != 3 || parts[1] != "pods" || !ok {
		status(http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("pods %q not found", parts[len(parts)-1]))
		return
	}
	writeJSON(w, http.StatusOK, pod)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		panic(err) // the test's own types always encode
	}
}

func (f *fakeAPI) add(pod *corev1.Pod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pod.TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
	f.pods[pod.Namespace+"/"+pod.Name] = pod
}

// harness is one test node: its netns, a fake API server listening inside
// it (the plugin runs there, as under a runtime on that node), the
// kubeconfig pointing at it, and a libcni client.
type harness struct {
	t          *testing.T
	node       *nstest.NS
	api        *fakeAPI
	server     string
	caPEM      []byte
	kubeconfig string
	dataDir    string
	cni        *libcni.CNIConfig
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{
		t: t, node: nstest.NewT(t, "node"), api: &fakeAPI{pods: map[string]*corev1.Pod{}},
		dataDir: t.TempDir(), cni: libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), nil),
	}
	var ln net.Listener
	require.NoError(t, h.node.Do(func(ns.NetNS) (err error) { ln, err = net.Listen("tcp4", "127.0.0.1:0"); return err }))
	srv := httptest.NewUnstartedServer(h.api)
	srv.Listener = ln
	srv.StartTLS()
	t.Cleanup(srv.Close)
	h.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	h.server = srv.URL
	h.kubeconfig = writeKubeconfig(t, h.server, h.caPEM, testToken)
	return h
}

// writeKubeconfig writes a kubeconfig like the one weft-cni-node writes.
func writeKubeconfig(t *testing.T, server string, caPEM []byte, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "weft-kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["weft"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["weft-cni-node"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["weft"] = &clientcmdapi.Context{Cluster: "weft", AuthInfo: "weft-cni-node"}
	cfg.CurrentContext = "weft"
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path
}

// redirectEntry is the plugin entry weft-cni-node writes, plus extra.
func (h *harness) redirectEntry(kubeconfig, extra string) string {
	return fmt.Sprintf(`{"type":"weft-redirect","kubeconfig":%q%s}`, kubeconfig, extra)
}

// conflist is weft-bridge followed by the given plugin entries.
func (h *harness) conflist(version string, chained ...string) *libcni.NetworkConfigList {
	h.t.Helper()
	plugins := append([]string{fmt.Sprintf(`{"type":"weft-bridge","bridge":"weft0","podCIDR":"10.244.1.0/24",`+
		`"mtu":1500,"hairpinMode":true,"dataDir":%q}`, h.dataDir)}, chained...)
	text := fmt.Sprintf(`{"cniVersion":%q,"name":"weft","plugins":[%s]}`, version, strings.Join(plugins, ","))
	list, err := libcni.ConfListFromBytes([]byte(text))
	require.NoError(h.t, err)
	return list
}

// rt is the runtime config of pod ns/name in netns pod, as containerd
// passes it.
func rt(id string, pod *nstest.NS, namespace, name string) *libcni.RuntimeConf {
	rc := &libcni.RuntimeConf{ContainerID: id, NetNS: pod.Path(), IfName: "eth0"}
	if name != "" {
		rc.Args = [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", namespace}, {"K8S_POD_NAME", name},
			{"K8S_POD_INFRA_CONTAINER_ID", id}}
	}
	return rc
}

func (h *harness) inNode(fn func() error) error {
	return h.node.Do(func(ns.NetNS) error { return fn() })
}

func (h *harness) add(list *libcni.NetworkConfigList, rc *libcni.RuntimeConf) (*current.Result, error) {
	var res types.Result
	err := h.inNode(func() (err error) { res, err = h.cni.AddNetworkList(context.Background(), list, rc); return err })
	if err != nil {
		return nil, err
	}
	return current.NewResultFromResult(res)
}

// addOne runs weft-redirect alone with the given plugin entry (which may
// carry a prevResult), as the runtime runs a chained plugin.
func (h *harness) addOne(entry string, rc *libcni.RuntimeConf) ([]byte, error) {
	h.t.Helper()
	conf, err := libcni.ConfFromBytes([]byte(entry))
	require.NoError(h.t, err)
	conf, err = libcni.InjectConf(conf, map[string]any{"name": "weft", "cniVersion": "1.0.0"})
	require.NoError(h.t, err)
	var res types.Result
	err = h.inNode(func() (err error) { res, err = h.cni.AddNetwork(context.Background(), conf, rc); return err })
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

func (h *harness) del(list *libcni.NetworkConfigList, rc *libcni.RuntimeConf) error {
	return h.inNode(func() error { return h.cni.DelNetworkList(context.Background(), list, rc) })
}

func (h *harness) check(list *libcni.NetworkConfigList, rc *libcni.RuntimeConf) error {
	return h.inNode(func() error { return h.cni.CheckNetworkList(context.Background(), list, rc) })
}

// natSave is `iptables-save -t nat` of n without its "#" lines.
func natSave(t *testing.T, n *nstest.NS) string {
	t.Helper()
	out, err := n.Run("iptables-save", "-t", "nat")
	require.NoError(t, err)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// podState is everything of a pod netns a failed ADD must not change.
func podState(t *testing.T, n *nstest.NS) string {
	t.Helper()
	out, err := n.Run("sh", "-c", "ip -o link; ip -o addr; ip route")
	require.NoError(t, err)
	return out + natSave(t, n)
}
