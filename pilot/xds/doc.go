// Package xds serves Envoy configuration to Weft sidecars over the
// Aggregated Discovery Service, in both state-of-the-world and incremental
// (delta) variants
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-docs/xds_protocol), using
// go-control-plane's server and snapshot cache.
//
// Each stream is authenticated by the client's X.509-SVID and authorised
// against the model: the SPIFFE ID must be the service account of the pod
// named in the Envoy node id, so a proxy cannot ask for another's config.
// Model changes are debounced into pushes; each push regenerates every
// connected proxy's snapshot from shared parts (per-Service outbound config
// rebuilt only when its inputs change, assembled once per visibility scope),
// versions it by content hash and hands go-control-plane (one snapshot
// cache per type, typeCaches) only the types whose content changed, so
// unchanged types are neither resent nor diffed. ACKs and NACKs are tracked per proxy and type for
// meshctl proxy-status (SyncStatus, DebugHandler's /debug/syncz).
//
// Sidecars should use delta ADS (api_type DELTA_GRPC): go-control-plane's
// snapshot cache answers a state-of-the-world EDS or RDS request with every
// subscribed resource, so one endpoint change costs proxies × Services
// marshals there, against proxies × 1 with delta (see loadgen).
package xds
