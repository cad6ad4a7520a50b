package dashboard

import (
	"context"
	"fmt"
	"sort"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/meshctl/kube"
	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/telemetry/envoystats"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Source is where the graph's facts come from: the meshed pods, their
// sidecars' stats and which workloads back which Services.
type Source interface {
	// Pods lists running meshed pods of namespace ("" for all).
	Pods(ctx context.Context, namespace string) ([]Pod, error)
	// Stats reads a pod's Envoy stats in the Prometheus text format.
	Stats(ctx context.Context, p Pod) ([]byte, error)
	// Backends lists Service → workload links of namespace ("" for all).
	Backends(ctx context.Context, namespace string) ([]Backend, error)
}

// KubeSource reads a cluster: pods and EndpointSlices from the API server,
// each sidecar's 15090 through the API server's pod proxy (the stats
// listener is bound to the pod's address; no port-forward needed).
type KubeSource struct{ Client *kube.Client }

// StatsPath is the stats request: Envoy's Prometheus endpoint with
// StatsFilter (unencoded: the pod proxy client encodes it).
const StatsPath = "/stats/prometheus?" + StatsFilter

// Pods implements Source.
func (k KubeSource) Pods(ctx context.Context, namespace string) ([]Pod, error) {
	list, err := k.Client.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", kube.Humanize(err, k.Client.Host))
	}
	var out []Pod
	for _, p := range list.Items {
		if _, meshed := p.Annotations[annotation.StatusAnnotation]; !meshed || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		out = append(out, Pod{Namespace: p.Namespace, Name: p.Name, Workload: envoystats.WorkloadName(p.Name)})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out, nil
}

// Stats implements Source.
func (k KubeSource) Stats(ctx context.Context, p Pod) ([]byte, error) {
	body, err := k.Client.PodHTTP.Get(ctx, p.Namespace, p.Name, generator.PortStats, StatsPath)
	if err != nil {
		return nil, fmt.Errorf("read stats: %s", kube.Message(err))
	}
	return body, nil
}

// Backends implements Source: every EndpointSlice endpoint that is a pod
// links the slice's Service to the pod's workload.
func (k KubeSource) Backends(ctx context.Context, namespace string) ([]Backend, error) {
	list, err := k.Client.Kube.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list endpointslices: %w", kube.Humanize(err, k.Client.Host))
	}
	var out []Backend
	for _, es := range list.Items {
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		for _, ep := range es.Endpoints {
			if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
				continue
			}
			ns := ep.TargetRef.Namespace
			if ns == "" {
				ns = es.Namespace
			}
			out = append(out, Backend{Service: Service{Namespace: es.Namespace, Name: svc}, Workload: Workload{Namespace: ns, Name: envoystats.WorkloadName(ep.TargetRef.Name)}})
		}
	}
	return out, nil
}
