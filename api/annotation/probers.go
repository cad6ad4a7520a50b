package annotation

import (
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// AppProbersEnv is the weft-sidecar environment variable that carries the
// app's original probes (JSON of AppProbers). The injector rewrites HTTP
// and TCP probes to hit weft-agent on AgentPort, because with STRICT inbound
// mTLS the kubelet's plain-text probes would be refused by Envoy; the agent
// runs the original probe from inside the pod, as Istio's pilot-agent does
// with ISTIO_KUBE_APP_PROBERS.
const AppProbersEnv = "WEFT_APP_PROBERS"

// Probe kinds: the last path segment of a rewritten probe.
const (
	LivenessProbe  = "livez"
	ReadinessProbe = "readyz"
	StartupProbe   = "startupz"
)

// AppProbePath is the agent path that stands in for one probe of one
// container: /app-health/<container>/<livez|readyz|startupz>.
func AppProbePath(container, kind string) string {
	return "/app-health/" + container + "/" + kind
}

// AppProbe is an original probe action. Exactly one of HTTPGet and
// TCPSocket is set; named ports are already resolved to numbers, because
// the agent does not see the pod spec.
type AppProbe struct {
	HTTPGet   *corev1.HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket *corev1.TCPSocketAction `json:"tcpSocket,omitempty"`
	// TimeoutSeconds is the original probe timeout (the kubelet applies the
	// same timeout to the rewritten probe).
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
}

// AppProbers maps an AppProbePath to the probe the agent must run.
type AppProbers map[string]AppProbe

// ParseAppProbers decodes AppProbersEnv and checks every entry is runnable.
func ParseAppProbers(s string) (AppProbers, error) {
	var p AppProbers
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, fmt.Errorf("decode %s: %w", AppProbersEnv, err)
	}
	for path, probe := range p {
		if !strings.HasPrefix(path, "/app-health/") {
			return nil, fmt.Errorf("%s: path %q is not under /app-health/", AppProbersEnv, path)
		}
		if (probe.HTTPGet == nil) == (probe.TCPSocket == nil) {
			return nil, fmt.Errorf("%s: %s must have exactly one of httpGet and tcpSocket", AppProbersEnv, path)
		}
	}
	return p, nil
}

// String encodes the map for AppProbersEnv; map keys are sorted by
// encoding/json, so the value is stable across re-injection.
func (p AppProbers) String() string {
	b, err := json.Marshal(p)
	if err != nil {
		// Unreachable: every field is a string, an integer or an
		// IntOrString, which always marshal.
		panic(fmt.Sprintf("encode app probers: %v", err))
	}
	return string(b)
}
