package injector

import (
	"fmt"

	"github.com/weftmesh/weft/api/annotation"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// resolveResources applies the proxy.weft.dev/* annotations over the
// defaults. A malformed quantity or a limit below its request is an error
// naming the annotation, so the pod is refused with a message the user can
// act on rather than an opaque API validation failure.
func resolveResources(ann map[string]string, def ProxyResources) (corev1.ResourceRequirements, error) {
	var res corev1.ResourceRequirements
	type item struct {
		name     corev1.ResourceName
		req, lim string // annotation keys
		defReq   resource.Quantity
		defLim   resource.Quantity
	}
	for _, it := range []item{
		{corev1.ResourceCPU, annotation.ProxyCPUAnnotation, annotation.ProxyCPULimitAnnotation, def.CPU, def.CPULimit},
		{corev1.ResourceMemory, annotation.ProxyMemoryAnnotation, annotation.ProxyMemoryLimitAnnotation, def.Memory, def.MemoryLimit},
	} {
		req, err := quantity(ann, it.req, it.defReq)
		if err != nil {
			return corev1.ResourceRequirements{}, err
		}
		lim, err := quantity(ann, it.lim, it.defLim)
		if err != nil {
			return corev1.ResourceRequirements{}, err
		}
		if !req.IsZero() && !lim.IsZero() && lim.Cmp(req) < 0 {
			return corev1.ResourceRequirements{}, fmt.Errorf("proxy %s limit %s is below its request %s (annotations %s, %s)",
				it.name, lim.String(), req.String(), it.req, it.lim)
		}
		if !req.IsZero() {
			if res.Requests == nil {
				res.Requests = corev1.ResourceList{}
			}
			res.Requests[it.name] = req
		}
		if !lim.IsZero() {
			if res.Limits == nil {
				res.Limits = corev1.ResourceList{}
			}
			res.Limits[it.name] = lim
		}
	}
	return res, nil
}

func quantity(ann map[string]string, key string, def resource.Quantity) (resource.Quantity, error) {
	v, ok := ann[key]
	if !ok {
		return def, nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return resource.Quantity{}, fmt.Errorf("annotation %s=%q is not a quantity (e.g. \"100m\", \"128Mi\")", key, v)
	}
	if q.Sign() < 0 {
		return resource.Quantity{}, fmt.Errorf("annotation %s=%q must not be negative", key, v)
	}
	return q, nil
}
