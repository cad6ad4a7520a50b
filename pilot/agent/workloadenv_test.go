package agent

import (
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/assert"
)

func TestEnvoyWorkloadEnv(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("cluster.local")
	pod := Pod{Name: "reviews-v1-5d8f7c9b4-x2x7q", Namespace: "shop", ServiceAccount: "bookinfo-reviews"}
	assert.Equal(t, []string{
		"WEFT_WORKLOAD_NAME=reviews-v1",
		"WEFT_WORKLOAD_NAMESPACE=shop",
		"WEFT_WORKLOAD_PRINCIPAL=spiffe://cluster.local/ns/shop/sa/bookinfo-reviews",
	}, EnvoyWorkloadEnv(pod, td))

	// Without the downward API's values nothing is empty: Envoy would
	// otherwise put empty labels and headers in every request.
	assert.Equal(t, []string{
		"WEFT_WORKLOAD_NAME=unknown", "WEFT_WORKLOAD_NAMESPACE=unknown", "WEFT_WORKLOAD_PRINCIPAL=unknown",
	}, EnvoyWorkloadEnv(Pod{}, td))
	assert.Contains(t, EnvoyWorkloadEnv(Pod{Name: "web-0", Namespace: "shop"}, td),
		"WEFT_WORKLOAD_PRINCIPAL=unknown", "no service account, no SPIFFE ID")
}
