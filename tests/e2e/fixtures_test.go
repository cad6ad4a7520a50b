//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Images of the sample apps (built by `make images`).
const (
	httpbinImage = "weft.local/httpbin:dev"
	curlImage    = "weft.local/curl:dev"
)

var downwardEnv = []corev1.EnvVar{
	{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
}

func httpbinContainer() corev1.Container {
	return corev1.Container{
		Name: "httpbin", Image: httpbinImage, ImagePullPolicy: corev1.PullIfNotPresent, Env: downwardEnv,
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "udp", ContainerPort: 9090, Protocol: corev1.ProtocolUDP}},
		ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
			HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}},
	}
}

func curlContainer() corev1.Container {
	return corev1.Container{Name: "curl", Image: curlImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"curl", "-sleep"}}
}

func podSpec(containers ...corev1.Container) corev1.PodSpec {
	return corev1.PodSpec{TerminationGracePeriodSeconds: new(int64), Containers: containers}
}

// deployment runs replicas pods of spec labelled app=name.
func deployment(name string, replicas int32, spec corev1.PodSpec) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}

// service selects app=selector and maps port → targetPort (TCP unless named "udp").
func service(name, selector string, mutate ...func(*corev1.Service)) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": selector},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP},
				{Name: "udp", Port: 9090, TargetPort: intstr.FromInt32(9090), Protocol: corev1.ProtocolUDP},
			},
		},
	}
	for _, m := range mutate {
		m(svc)
	}
	return svc
}

func createAll(t testing.TB, ns string, objs ...any) {
	t.Helper()
	ctx := context.Background()
	cs := clients(t)
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *appsv1.DaemonSet:
			_, err = cs.AppsV1().DaemonSets(ns).Create(ctx, o, metav1.CreateOptions{})
		case *appsv1.Deployment:
			_, err = cs.AppsV1().Deployments(ns).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Service:
			_, err = cs.CoreV1().Services(ns).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Pod:
			_, err = cs.CoreV1().Pods(ns).Create(ctx, o, metav1.CreateOptions{})
		default:
			t.Fatalf("createAll: unsupported %T", o)
		}
		require.NoError(t, err)
	}
}

// summary is the curl sample's -summary output.
type summary struct {
	Requests int            `json:"requests"`
	Codes    map[string]int `json:"codes"`
	ServedBy map[string]int `json:"servedBy"`
	Errors   []string       `json:"errors"`
}

// stats is summary with latency.
type stats struct {
	summary
	P50ms float64 `json:"p50ms"`
	P99ms float64 `json:"p99ms"`
}

// curlLoad runs `curl -summary -n n -c c -timeout timeout` in pod's
// container with extra flags (-H ...) and decodes its summary, which must
// count all n requests.
func curlLoad(ctx context.Context, pod corev1.Pod, container string, n, c int, timeout, url string, extra ...string) (stats, error) {
	args := append([]string{"curl", "-summary", "-n", fmt.Sprint(n), "-c", fmt.Sprint(c), "-timeout", timeout}, extra...)
	out, _, err := cluster.Exec(ctx, pod.Namespace, pod.Name, container, append(args, url)...)
	if err != nil {
		return stats{}, err
	}
	var s stats
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return stats{}, fmt.Errorf("decode summary %q: %w", out, err)
	}
	if s.Requests != n {
		return stats{}, fmt.Errorf("summary of %d requests, want %d: %q", s.Requests, n, out)
	}
	return s, nil
}

// load sends n requests from pod's curl container and returns the summary.
func load(ctx context.Context, pod corev1.Pod, container string, n int, url string, extra ...string) (summary, error) {
	s, err := curlLoad(ctx, pod, container, n, 4, "3s", url, extra...)
	return s.summary, err
}

// eventually retries fn until it succeeds or timeout passes, returning the
// last error and how long it took.
func eventually(timeout time.Duration, fn func() error) (time.Duration, error) {
	start := time.Now()
	var err error
	for time.Since(start) < timeout {
		if err = fn(); err == nil {
			return time.Since(start), nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return time.Since(start), err
}

// podNodes maps pod name → node name for the pods matching selector.
func podNodes(t *testing.T, ns, selector string) map[string]string {
	t.Helper()
	pods, err := clients(t).CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	require.NoError(t, err)
	m := map[string]string{}
	for _, p := range pods.Items {
		m[p.Name] = p.Spec.NodeName
	}
	return m
}

func keys(m map[string]int) string {
	var ks []string
	for k, v := range m {
		ks = append(ks, fmt.Sprintf("%s=%d", k, v))
	}
	return strings.Join(ks, ",")
}
