//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/tests/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

// BenchmarkPodStartup measures pod create → Ready for an httpbin pod with
// and without the injected sidecar, one pod at a time, and reports the
// median and p90 (run with -benchtime=20x for the issue's ≥20 pods):
//
//	go test -tags e2e -run '^$' -bench PodStartup -benchtime 20x ./tests/e2e/ -args -kubeconfig …
func BenchmarkPodStartup(b *testing.B) {
	for _, meshed := range []bool{false, true} {
		name := "plain"
		labels := map[string]string{}
		if meshed {
			name = "sidecar"
			labels[annotation.InjectionLabel] = annotation.InjectionEnabled
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			ns := fmt.Sprintf("bench-start-%s-%d", name, time.Now().UnixNano()%100000)
			if err := cluster.CreateNamespace(ctx, ns, labels); err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := cluster.DeleteNamespace(context.Background(), ns, 2*time.Minute); err != nil {
					b.Error(err)
				}
			}()
			if meshed {
				// The sidecar needs the trust bundle that pilot publishes into
				// the namespace; wait for it outside the timed part.
				if _, err := eventually(30*time.Second, func() error {
					_, err := cluster.Client.CoreV1().ConfigMaps(ns).Get(ctx, "weft-root-cert", metav1.GetOptions{})
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
			var took []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d, err := startOnePod(ctx, ns, fmt.Sprintf("p%d", i))
				if err != nil {
					b.Fatal(err)
				}
				took = append(took, d)
			}
			b.StopTimer()
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "ms-median")
			b.ReportMetric(float64(took[len(took)*9/10].Milliseconds()), "ms-p90")
		})
	}
}

// startOnePod creates an httpbin pod, waits until it is Ready (watching, so
// the time is not rounded to a poll interval) and deletes it.
func startOnePod(ctx context.Context, ns, name string) (time.Duration, error) {
	pods := cluster.Client.CoreV1().Pods(ns)
	w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: podSpec(httpbinContainer())}
	start := time.Now()
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case ev := <-w.ResultChan():
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type != watch.Deleted && framework.PodReady(*p) {
				took := time.Since(start)
				return took, pods.Delete(ctx, name, metav1.DeleteOptions{})
			}
		case <-timeout:
			return 0, fmt.Errorf("pod %s/%s not Ready in 2m", ns, name)
		}
	}
}
