package agent

import "strings"

// envResourceAttributes is the OpenTelemetry SDK's resource variable
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
const envResourceAttributes = "OTEL_RESOURCE_ATTRIBUTES"

// WithoutPodAttributes wraps getenv so that OTEL_RESOURCE_ATTRIBUTES lacks
// the pairs naming p exactly as EnvoyResourceEnv does (k8s.pod.name,
// k8s.namespace.name, k8s.node.name). The injector sets those for the
// agent's own telemetry; handed on to Envoy they would repeat what
// EnvoyResourceEnv already says. Other pairs, and the same keys with other
// values (an operator's), are kept and still win.
func WithoutPodAttributes(p Pod, getenv func(string) string) func(string) string {
	own := map[string]bool{"k8s.pod.name=" + p.Name: true, "k8s.namespace.name=" + p.Namespace: true}
	if p.NodeName != "" {
		own["k8s.node.name="+p.NodeName] = true
	}
	return func(key string) string {
		v := getenv(key)
		if key != envResourceAttributes || v == "" {
			return v
		}
		var kept []string
		for _, pair := range strings.Split(v, ",") {
			if !own[strings.TrimSpace(pair)] {
				kept = append(kept, pair)
			}
		}
		return strings.Join(kept, ",")
	}
}
