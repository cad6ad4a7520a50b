// Package model is pilot's in-memory picture of the cluster: Services,
// EndpointSlices, Pods and MeshTLS policies, reduced to the fields the mesh
// needs. It holds no Envoy types, so the same model feeds the generator, the
// xDS server's authorisation and meshctl, and tests can build it from plain
// structs.
//
// The Store is written by informer event handlers (see Informers) or by tests
// and read through immutable Views, so config generation never holds a lock
// while it works. Every write notifies subscribers, which only record that a
// push is due, in the reconcile style of kube-proxy: one debounced push
// rebuilds whatever changed.
package model
