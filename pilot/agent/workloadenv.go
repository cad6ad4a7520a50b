package agent

import (
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weftmesh/weft/pilot/telemetry/envoystats"
)

// EnvoyWorkloadEnv is the environment that names the sidecar in servers'
// request metrics: pilot's outbound config is shared by every proxy of a
// namespace, so it reads the calling workload with %ENVIRONMENT(...)%
// (envoystats.EnvWorkloadName, EnvWorkloadNamespace) in the request
// headers that tell the server who calls
// (pilot/generator/requestmetrics.go). EnvWorkloadPrincipal, the SPIFFE
// ID the pod's SVID carries (its namespace and service account), is no
// longer read by pilot's config since only servers record. Anything the
// pod's environment does not tell is "unknown", never empty.
func EnvoyWorkloadEnv(p Pod, td spiffeid.TrustDomain) []string {
	workload, namespace, principal := envoystats.Unknown, envoystats.Unknown, envoystats.Unknown
	if p.Name != "" {
		workload = envoystats.WorkloadName(p.Name)
	}
	if p.Namespace != "" {
		namespace = p.Namespace
		if id, err := spiffeid.FromSegments(td, "ns", p.Namespace, "sa", p.ServiceAccount); err == nil && p.ServiceAccount != "" {
			principal = id.String()
		}
	}
	return []string{
		envoystats.EnvWorkloadName + "=" + workload,
		envoystats.EnvWorkloadNamespace + "=" + namespace,
		envoystats.EnvWorkloadPrincipal + "=" + principal,
	}
}
