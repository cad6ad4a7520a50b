package model

import "github.com/weftmesh/weft/api/annotation"

// AnnotationSidecarStatus is set by the injector on pods that got a sidecar.
// Pilot uses its presence to decide per endpoint whether a client may speak
// mutual TLS to it (Istio's "sidecar.istio.io/status").
const AnnotationSidecarStatus = annotation.StatusAnnotation

// AnnotationExportTo on a Service lists the namespaces whose proxies get
// config for it, comma-separated: "*" (all, the default), "." (its own
// namespace) or namespace names. It narrows config scope like Istio's
// networking.istio.io/exportTo
// (https://istio.io/latest/docs/reference/config/annotations/#NetworkingExportTo).
// It is read only by pilot; it belongs in api/annotation once that package
// takes user-facing traffic annotations.
const AnnotationExportTo = "networking.weft.dev/exportTo"

// ExportAll is the exportTo value that makes a Service visible everywhere.
const ExportAll = "*"

// ExportSelf is the exportTo value that means "the Service's own namespace".
const ExportSelf = "."
