package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWithoutPodAttributes(t *testing.T) {
	pod := Pod{Name: "web-0", Namespace: "shop", NodeName: "node-a"}
	env := func(v string) func(string) string {
		return func(k string) string {
			switch k {
			case envResourceAttributes:
				return v
			case "OTHER":
				return "kept"
			}
			return ""
		}
	}
	for in, want := range map[string]string{
		// What the injector sets, expanded by the kubelet: nothing is left.
		"k8s.pod.name=web-0,k8s.namespace.name=shop,k8s.node.name=node-a": "",
		// An operator's own attributes, and other values for the same
		// keys, are passed on in their order.
		"k8s.pod.name=web-0,team=payments,k8s.namespace.name=shop": "team=payments",
		"k8s.pod.name=other,service.name=web":                      "k8s.pod.name=other,service.name=web",
		"":                                                         "",
	} {
		get := WithoutPodAttributes(pod, env(in))
		assert.Equal(t, want, get(envResourceAttributes), in)
		assert.Equal(t, "kept", get("OTHER"), "other variables are untouched")
	}
	// No node: a k8s.node.name pair is never the pod's own.
	get := WithoutPodAttributes(Pod{Name: "web-0", Namespace: "shop"}, env("k8s.node.name="))
	assert.Equal(t, "k8s.node.name=", get(envResourceAttributes))
}
