package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/proxy/internal/fixtures"
	"github.com/weftmesh/weft/proxy/model"
)

// maxServices bounds what the harness will create in a shared cluster.
const maxServices = 20000

// benchLabel marks everything the harness creates.
const benchLabel = "weft.dev/proxy-bench"

// managedBy keeps the EndpointSlice controllers away from our slices.
const managedBy = "weft-proxy-bench"

// namespaceFor names a fresh namespace per run: on an API server without a
// namespace controller an earlier run's namespace never finishes deleting.
func namespaceFor(n int) string {
	return fmt.Sprintf("weft-proxy-bench-%d-%d", n, time.Now().Unix()%100000)
}

// benchObjects converts the fixture world for a real API server: no cluster
// IPs (the API server allocates them), no selectors (we own the slices).
func benchObjects(ns string, n int) ([]*v1.Service, []*discovery.EndpointSlice) {
	w := fixtures.Scale(ns, n)
	for _, s := range w.Services {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil
		s.Labels = map[string]string{benchLabel: "true"}
		s.Spec.Ports[0].TargetPort.IntVal = 8080
	}
	for _, s := range w.Slices {
		s.Labels[discovery.LabelManagedBy] = managedBy
		s.Labels[benchLabel] = "true"
	}
	return w.Services, w.Slices
}

// createAll creates the namespace, Services and slices with bounded
// concurrency.
func createAll(ctx context.Context, c kubernetes.Interface, ns string, svcs []*v1.Service, slices []*discovery.EndpointSlice) error {
	nsObj := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{benchLabel: "true"}}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, nsObj, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	jobs := make([]func() error, 0, len(svcs)+len(slices))
	for _, s := range svcs {
		jobs = append(jobs, func() error {
			_, err := c.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{})
			return err
		})
	}
	for _, s := range slices {
		jobs = append(jobs, func() error {
			_, err := c.DiscoveryV1().EndpointSlices(ns).Create(ctx, s, metav1.CreateOptions{})
			return err
		})
	}
	if err := parallel(16, jobs); err != nil {
		return fmt.Errorf("create objects: %w", err)
	}
	return nil
}

func parallel(workers int, jobs []func() error) error {
	var mu sync.Mutex
	var first error
	ch := make(chan func() error)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for job := range ch {
				if err := job(); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	return first
}

// deleteAll deletes the slices and Services explicitly (so nothing waits
// for the namespace controller), then the namespace, and waits up to two
// minutes for it to go, keeping the shared API server's load bounded
// between sizes.
func deleteAll(ctx context.Context, c kubernetes.Interface, ns string, svcs []*v1.Service) error {
	sel := metav1.ListOptions{LabelSelector: benchLabel + "=true"}
	if err := c.DiscoveryV1().EndpointSlices(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, sel); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete endpoint slices in %s: %w", ns, err)
	}
	jobs := make([]func() error, 0, len(svcs))
	for _, s := range svcs {
		jobs = append(jobs, func() error {
			if err := c.CoreV1().Services(ns).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			return nil
		})
	}
	if err := parallel(16, jobs); err != nil {
		return fmt.Errorf("delete services in %s: %w", ns, err)
	}
	err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	// Without a namespace controller (a bare API server) the empty namespace
	// stays Terminating; its objects are gone already, so a timeout is fine.
	err = wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil && !wait.Interrupted(err) {
		return fmt.Errorf("wait for namespace %s: %w", ns, err)
	}
	return nil
}

// changeOneEndpoint replaces the endpoints of one slice, stamped with the
// trigger time both proxies measure network-programming latency from.
func changeOneEndpoint(ctx context.Context, c kubernetes.Interface, s *discovery.EndpointSlice, round int) error {
	cur, err := c.DiscoveryV1().EndpointSlices(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get slice %s: %w", s.Name, err)
	}
	cur.Endpoints[0].Addresses = []string{fmt.Sprintf("10.250.%d.%d", round/250%250, round%250+1)}
	if cur.Annotations == nil {
		cur.Annotations = map[string]string{}
	}
	cur.Annotations[model.TriggerTimeAnnotation] = time.Now().UTC().Format(time.RFC3339Nano)
	if _, err := c.DiscoveryV1().EndpointSlices(s.Namespace).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update slice %s: %w", s.Name, err)
	}
	return nil
}
