package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEnvoyResourceEnv(t *testing.T) {
	pod := Pod{Name: "reviews-v1-5d8f7c9b4-x2x7q", Namespace: "shop", NodeName: "node-a"}
	none := func(string) string { return "" }
	assert.Equal(t, []string{"OTEL_RESOURCE_ATTRIBUTES=service.name=reviews-v1,service.namespace=shop," +
		"k8s.namespace.name=shop,k8s.pod.name=reviews-v1-5d8f7c9b4-x2x7q,k8s.node.name=node-a"}, EnvoyResourceEnv(pod, none))

	// The operator's own attributes come last, so they win.
	own := func(k string) string {
		if k == "OTEL_RESOURCE_ATTRIBUTES" {
			return "service.name=reviews"
		}
		return ""
	}
	assert.Contains(t, EnvoyResourceEnv(pod, own)[0], "k8s.node.name=node-a,service.name=reviews")
}
