//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cninode "github.com/weftmesh/weft/cni-plugin/node"
	"github.com/weftmesh/weft/install"
	"github.com/weftmesh/weft/tests/cluster/local"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/rand"
)

// valuesFromArgs reads the values file of meshctl's "-f <file>" arguments,
// or returns the defaults when there is none. A bad file is reported with
// t.Errorf (the caller must go on to reinstall) and gives the defaults.
func valuesFromArgs(t *testing.T, args []string) install.Values {
	t.Helper()
	if len(args) != 2 || args[0] != "-f" {
		return install.Defaults()
	}
	data, err := os.ReadFile(args[1])
	if err == nil {
		var v install.Values
		if v, err = install.ReadValues(data); err == nil {
			return v
		}
	}
	t.Errorf("values for the node check: %v", err)
	return install.Defaults()
}

// weftNodeFiles are the host paths weft-cni-node writes on node (the
// conflist, weft-redirect's kubeconfig, the plugin binaries), as the
// values place them: with cni.perNodeDirs (the local cluster, whose nodes
// share one filesystem) each node's conf dir is <confDir>/<node>/cni/net.d.
func weftNodeFiles(v install.Values, node string) []string {
	conf := v.CNI.ConfDir
	if v.CNI.PerNodeDirs {
		conf = filepath.Join(conf, node, "cni", "net.d")
	}
	return []string{
		filepath.Join(conf, cninode.ConflistName),
		filepath.Join(conf, cninode.KubeconfigName),
		filepath.Join(v.CNI.BinDir, "weft-bridge"),
		filepath.Join(v.CNI.BinDir, "weft-redirect"),
	}
}

// leftoverChains lists the WEFT- chains of an iptables-save dump and the
// rules that jump to one, except the local cluster's own leak guard
// (local.GuardChain), which belongs to the test cluster, not to Weft.
func leftoverChains(dump string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(dump))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	table := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":WEFT-"):
			if chain, _, _ := strings.Cut(line[1:], " "); chain != local.GuardChain {
				out = append(out, table+" chain "+chain)
			}
		case strings.HasPrefix(line, "-A "):
			f := strings.Fields(line)
			for i := 0; i+1 < len(f); i++ {
				if (f[i] == "-j" || f[i] == "-g") && strings.HasPrefix(f[i+1], "WEFT-") && f[i+1] != local.GuardChain {
					out = append(out, table+" rule "+line)
				}
			}
		}
	}
	return out
}

// checkNodesClean checks that no node keeps Weft's state after `meshctl
// uninstall`: no WEFT- iptables chain (iptables-save in a hostNetwork pod
// per node, which needs no pod network) and none of weft-cni-node's files.
// The cni-node image has no shell, ls or nft, so files are probed with
// hostPath volumes of type File: the kubelet refuses to mount a missing
// path (event FailedMount "hostPath type check failed, <path> is not a
// file, unable to determine its type: path <path> does not exist"), and a
// pod that starts means the file is still there. The nftables table
// inet weft-netpol is not checked: there is no nft binary in any image.
// It reports with t.Errorf only, so the caller still reinstalls Weft.
func checkNodesClean(t *testing.T, v install.Values) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cs := clients(t)
	ns := "e2e-nodeclean-" + rand.String(5)
	if err := cluster.CreateNamespace(ctx, ns, map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}); err != nil {
		t.Errorf("node check: %v", err)
		return
	}
	defer func() {
		if err := cluster.DeleteNamespace(context.Background(), ns, 2*time.Minute); err != nil {
			t.Errorf("node check cleanup: %v", err)
		}
	}()
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("node check: list nodes: %v", err)
		return
	}
	image := v.Image("cni-node")
	type probe struct{ pod, node, path string }
	var saves, probes []probe
	for i, n := range nodes.Items {
		p := probe{pod: fmt.Sprintf("iptables-%d", i), node: n.Name}
		saves = append(saves, p)
		pods := []*corev1.Pod{hostPod(p.pod, n.Name, image, v.PullPolicy, []string{"iptables-save"}, "")}
		if v.Components.CNI {
			for j, path := range weftNodeFiles(v, n.Name) {
				p := probe{pod: fmt.Sprintf("file-%d-%d", i, j), node: n.Name, path: path}
				probes = append(probes, p)
				pods = append(pods, hostPod(p.pod, n.Name, image, v.PullPolicy, []string{"iptables", "--version"}, path))
			}
		}
		for _, pod := range pods {
			if err := createPod(ctx, ns, pod); err != nil {
				t.Errorf("node check: %v", err)
				return
			}
		}
	}
	for _, p := range saves {
		dump, err := podOutput(ctx, ns, p.pod)
		if err != nil {
			t.Errorf("node %s: iptables-save: %v", p.node, err)
			continue
		}
		if left := leftoverChains(dump); len(left) > 0 {
			t.Errorf("node %s keeps Weft's iptables state after uninstall:\n  %s", p.node, strings.Join(left, "\n  "))
		}
	}
	for _, p := range probes {
		if present, why := fileProbe(ctx, ns, p.pod); present {
			t.Errorf("node %s keeps %s after uninstall (%s)", p.node, p.path, why)
		}
	}
	t.Logf("node check: %d nodes, iptables and %d Weft files each; nftables table inet weft-netpol not checked (no nft in the images)",
		len(nodes.Items), len(probes)/max(1, len(nodes.Items)))
}

// hostPod is a short-lived privileged hostNetwork pod pinned to node that
// tolerates every taint (nodes are NotReady once the CNI config is gone).
// With probePath, it mounts that host path as a hostPath of type File.
func hostPod(name, node, image, pullPolicy string, command []string, probePath string) *corev1.Pod {
	privileged := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "e2e-nodeclean"}},
		Spec: corev1.PodSpec{
			NodeName: node, HostNetwork: true, RestartPolicy: corev1.RestartPolicyNever,
			AutomountServiceAccountToken: new(bool), TerminationGracePeriodSeconds: new(int64),
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: "check", Image: image, ImagePullPolicy: corev1.PullPolicy(pullPolicy), Command: command,
				SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
			}},
		},
	}
	if probePath != "" {
		file := corev1.HostPathFile
		pod.Spec.Volumes = []corev1.Volume{{Name: "probe", VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: probePath, Type: &file}}}}
		pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "probe", MountPath: "/probe", ReadOnly: true}}
	}
	return pod
}

// createPod creates pod, retrying while the new namespace's default
// ServiceAccount does not exist yet.
func createPod(ctx context.Context, ns string, pod *corev1.Pod) error {
	var err error
	for range 60 {
		if _, err = cluster.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err == nil {
			return nil
		}
		if !strings.Contains(err.Error(), "serviceaccount") {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("create pod %s/%s: %w", ns, pod.Name, err)
}

// podOutput waits for a pod to succeed and returns its log.
func podOutput(ctx context.Context, ns, name string) (string, error) {
	var phase corev1.PodPhase
	for phase != corev1.PodSucceeded {
		p, err := cluster.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		if phase = p.Status.Phase; phase == corev1.PodFailed {
			break
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("pod %s: %s after the wait: %w", name, phase, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	out, err := cluster.Client.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("log of %s: %w", name, err)
	}
	if phase == corev1.PodFailed {
		return "", fmt.Errorf("pod %s failed: %s", name, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// fileProbe waits for a probe pod's outcome: the kubelet's FailedMount
// "does not exist" means the file is gone; a started container
// means it is there; anything else at the path is reported too.
func fileProbe(ctx context.Context, ns, name string) (bool, string) {
	sel := fields.Set{"involvedObject.name": name, "reason": "FailedMount"}.AsSelector().String()
	for {
		p, err := cluster.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && (p.Status.Phase != corev1.PodPending || containerStarted(p)) {
			return true, "the pod mounting it started: " + string(p.Status.Phase)
		}
		evs, err := cluster.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err == nil {
			for _, e := range evs.Items {
				switch {
				case strings.Contains(e.Message, "hostPath type check failed") &&
					(strings.Contains(e.Message, "does not exist") || strings.Contains(e.Message, "no such file or directory")):
					return false, ""
				case strings.Contains(e.Message, "hostPath type check failed"):
					return true, e.Message
				}
			}
		}
		select {
		case <-ctx.Done():
			return true, "undetermined: " + errors.Join(ctx.Err(), err).Error()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func containerStarted(p *corev1.Pod) bool {
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Running != nil || c.State.Terminated != nil {
			return true
		}
	}
	return false
}
