package v1alpha1

// Regenerate zz_generated.deepcopy.go and the CRD YAML in crds/ after changing
// the types: go generate ./api/v1alpha1/ (or, offline, the same arguments
// to .cache/bin/controller-gen, which `make rbac` builds from the same
// pinned version). allowDangerousTypes admits float64, which
// Telemetry.spec.tracing.randomSamplingPercentage needs to accept a plain
// number such as 0.5, as Istio's Telemetry does.
//go:generate go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0 object paths=./ crd:allowDangerousTypes=true output:crd:artifacts:config=crds
