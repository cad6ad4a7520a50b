// Package conformance runs the Gateway API conformance suite's mesh (GAMMA)
// profiles (sigs.k8s.io/gateway-api/conformance, pinned with the CRDs at
// v1.6.3) against a cluster with Weft installed. The runner is the
// conformance-tagged test in this directory; this file is what it claims
// about Weft, kept untagged so unit tests check it. See README.md.
package conformance

import (
	"maps"
	"slices"

	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/conformance/utils/config"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/pkg/features"
)

// Profiles are the conformance profiles Weft runs: the mesh ones. Weft has
// no Gateway (north-south) implementation, so the Gateway profiles do not
// apply.
var Profiles = []suite.ConformanceProfileName{
	suite.MeshHTTPConformanceProfileName,
	suite.MeshGRPCConformanceProfileName,
}

// SupportedFeatures are the features pilot implements for routes whose
// parentRef is a Service (pilot/model route_*.go, pilot/generator
// routes.go). The profiles' core features (Mesh, HTTPRoute, GRPCRoute)
// are implied; the extended ones are claimed only where the code does them.
var SupportedFeatures = []features.FeatureName{
	features.SupportMesh,
	features.SupportHTTPRoute,
	features.SupportGRPCRoute,
	// A Service port's listener matches the ClusterIP, not the Host header.
	features.SupportMeshClusterIPMatching,
	features.SupportHTTPRouteParentRefPort,
	features.SupportHTTPRouteResponseHeaderModification,
	features.SupportHTTPRoute303RedirectStatusCode,
	features.SupportHTTPRoute307RedirectStatusCode,
	features.SupportHTTPRoute308RedirectStatusCode,
	features.SupportMeshHTTPRouteRewritePath,
	features.SupportMeshHTTPRouteSchemeRedirect,
	features.SupportMeshHTTPRouteRedirectPort,
	features.SupportMeshHTTPRouteRedirectPath,
	features.SupportMeshHTTPRouteQueryParamMatching,
	features.SupportMeshHTTPRouteNamedRouteRule,
}

// UnsupportedFeatures are the profiles' extended features pilot does not
// implement, and why; their tests are reported as skipped, not passed.
var UnsupportedFeatures = map[features.FeatureName]string{
	features.SupportMeshConsumerRoute: "pilot attaches producer routes only (route in the Service's namespace); " +
		"a consumer route gets Accepted=False NotAllowedByParent",
	features.SupportMeshHTTPRouteBackendRequestHeaderModification: "backendRef filters are refused " +
		"(Accepted=False UnsupportedValue)",
}

// MeshNamespaceLabels are set on the suite's namespaces
// (gateway-conformance-mesh, gateway-conformance-mesh-consumer) so the
// injector gives their pods sidecars.
var MeshNamespaceLabels = map[string]string{"weft-injection": "enabled"}

// Implementation names Weft in the conformance report.
func Implementation(version string) confv1.Implementation {
	return confv1.Implementation{
		Organization: "weftmesh",
		Project:      "weft",
		URL:          "https://github.com/weftmesh/weft",
		Version:      version,
		Contact:      []string{"@weftmesh/maintainers"},
	}
}

// Options are the suite options of a Weft run, before the suite's own
// command-line flags (-run-test, -skip-tests, -report-output, …) are
// applied on top.
func Options(version, reportPath string) suite.ConfigurableOptions {
	return suite.ConfigurableOptions{
		ConformanceProfiles:  slices.Clone(Profiles),
		SupportedFeatures:    slices.Clone(SupportedFeatures),
		NamespaceLabels:      maps.Clone(MeshNamespaceLabels),
		Implementation:       Implementation(version),
		ReportOutputPath:     reportPath,
		CleanupBaseResources: true,
		CleanupTestResources: true,
		Mode:                 "default",
		TimeoutConfig:        config.DefaultTimeoutConfig(),
	}
}
