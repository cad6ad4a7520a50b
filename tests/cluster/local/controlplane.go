package local

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"
)

// component is one control-plane daemon: its binary and flags.
type component struct {
	name  string
	args  []string
	ready func(context.Context) error
}

// controlPlane lists etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler with the flags the notes call for, in start order.
func controlPlane(c Config) []component {
	pki := func(f string) string { return filepath.Join(c.pki(), f) }
	etcd := component{name: "etcd", args: []string{
		"--name=weft", "--data-dir=" + c.etcdDir(),
		"--listen-client-urls=https://127.0.0.1:2379", "--advertise-client-urls=https://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=weft=http://127.0.0.1:2380", "--listen-metrics-urls=http://127.0.0.1:2381",
		"--cert-file=" + pki("etcd-server.crt"), "--key-file=" + pki("etcd-server.key"),
		"--trusted-ca-file=" + pki("ca.crt"), "--client-cert-auth",
		"--unsafe-no-fsync", "--log-level=warn", "--quota-backend-bytes=4294967296",
	}, ready: httpReady("http://127.0.0.1:2381/health")}
	apiserver := component{name: "kube-apiserver", args: []string{
		"--etcd-servers=https://127.0.0.1:2379", "--etcd-cafile=" + pki("ca.crt"),
		"--etcd-certfile=" + pki("apiserver-etcd-client.crt"), "--etcd-keyfile=" + pki("apiserver-etcd-client.key"),
		"--bind-address=" + HostIP, "--advertise-address=" + HostIP, "--secure-port=" + strconv.Itoa(APIServerPort),
		"--tls-cert-file=" + pki("apiserver.crt"), "--tls-private-key-file=" + pki("apiserver.key"),
		"--client-ca-file=" + pki("ca.crt"),
		"--kubelet-client-certificate=" + pki("apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + pki("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority=" + pki("ca.crt"),
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--service-account-issuer=https://kubernetes.default.svc." + ClusterDomain,
		"--service-account-key-file=" + pki("sa.pub"), "--service-account-signing-key-file=" + pki("sa.key"),
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--enable-aggregator-routing=true", "--allow-privileged=true", "--profiling=false",
		"--v=1",
	}, ready: httpReady(APIServerURL() + "/readyz")}
	controllerManager := component{name: "kube-controller-manager", args: []string{
		"--kubeconfig=" + c.kubeconfig("kube-controller-manager"),
		"--authentication-kubeconfig=" + c.kubeconfig("kube-controller-manager"),
		"--authorization-kubeconfig=" + c.kubeconfig("kube-controller-manager"),
		"--allocate-node-cidrs", "--cluster-cidr=" + ClusterCIDR, "--node-cidr-mask-size=24",
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--use-service-account-credentials", "--leader-elect=false",
		"--root-ca-file=" + pki("ca.crt"), "--service-account-private-key-file=" + pki("sa.key"),
		"--cluster-signing-cert-file=" + pki("ca.crt"), "--cluster-signing-key-file=" + pki("ca.key"),
		"--bind-address=127.0.0.1", "--v=1",
	}, ready: httpReady("https://127.0.0.1:10257/healthz")}
	scheduler := component{name: "kube-scheduler", args: []string{
		"--kubeconfig=" + c.kubeconfig("kube-scheduler"),
		"--authentication-kubeconfig=" + c.kubeconfig("kube-scheduler"),
		"--authorization-kubeconfig=" + c.kubeconfig("kube-scheduler"),
		"--leader-elect=false", "--bind-address=127.0.0.1", "--v=1",
	}, ready: httpReady("https://127.0.0.1:10259/healthz")}
	return []component{etcd, apiserver, controllerManager, scheduler}
}

// httpReady polls url until it answers 200. It skips certificate checks: it
// only asks "are you up", and some components serve self-signed health ports.
func httpReady(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // readiness probe only
		}}
		var last error
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return fmt.Errorf("probe %s: %w", url, err)
			}
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
				last = fmt.Errorf("status %s", resp.Status)
			} else {
				last = err
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s not ready: %w (last: %v)", url, ctx.Err(), last)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// portFree reports whether nothing listens on addr, to fail early and clearly
// when something else holds a control-plane port.
func portFree(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}
