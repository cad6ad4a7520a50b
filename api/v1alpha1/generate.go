package v1alpha1

// Regenerate zz_generated.deepcopy.go and the CRD YAML in crds/ after changing
// the types: go generate ./api/v1alpha1/
//go:generate go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0 object paths=./ crd output:crd:artifacts:config=crds
