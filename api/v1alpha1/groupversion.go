package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

// GroupName is the API group of every Weft mesh CRD; DESIGN.md fixes it so
// that RBAC rules and the installer agree with the types.
const GroupName = "mesh.weft.dev"

// RootNamespace is the namespace whose selector-less MeshTLS (and whose
// Telemetry) applies to the whole mesh, like Istio's root namespace
// (meshConfig.rootNamespace).
const RootNamespace = "weft-system"

var (
	// GroupVersion is group/version used to register these objects, so
	// clients and informers can decode them.
	GroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

	// MeshTLSResource is the plural resource, for dynamic clients and
	// informers that address the API by resource rather than kind.
	MeshTLSResource = GroupVersion.WithResource("meshtlses")

	// TrafficPolicyResource is the plural resource of TrafficPolicy.
	TrafficPolicyResource = GroupVersion.WithResource("trafficpolicies")

	// AuthorizationPolicyResource is the plural resource of
	// AuthorizationPolicy.
	AuthorizationPolicyResource = GroupVersion.WithResource("authorizationpolicies")

	// TelemetryResource is the plural resource of Telemetry.
	TelemetryResource = GroupVersion.WithResource("telemetries")

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this group-version to a scheme, as
	// client-go and controller-runtime expect.
	AddToScheme = SchemeBuilder.AddToScheme
)

func init() {
	SchemeBuilder.Register(&MeshTLS{}, &MeshTLSList{},
		&TrafficPolicy{}, &TrafficPolicyList{},
		&AuthorizationPolicy{}, &AuthorizationPolicyList{},
		&Telemetry{}, &TelemetryList{})
}

// Ensure the types satisfy runtime.Object at compile time.
var (
	_ runtime.Object = &MeshTLS{}
	_ runtime.Object = &MeshTLSList{}
	_ runtime.Object = &TrafficPolicy{}
	_ runtime.Object = &TrafficPolicyList{}
	_ runtime.Object = &AuthorizationPolicy{}
	_ runtime.Object = &AuthorizationPolicyList{}
	_ runtime.Object = &Telemetry{}
	_ runtime.Object = &TelemetryList{}
)
