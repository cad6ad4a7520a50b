// Package samples holds the sample applications' manifests (the apps
// themselves are the mains below this directory), embedded for the demo and
// the e2e suite; users apply the same files with kubectl.
package samples

import _ "embed"

// HTTPBin is httpbin's ServiceAccount, Service (port 8000) and Deployment.
//
//go:embed httpbin/httpbin.yaml
var HTTPBin []byte

// Curl is the curl client's ServiceAccount and Deployment.
//
//go:embed curl/curl.yaml
var Curl []byte

// Bookinfo is the Bookinfo sample (Istio's, rewritten in Go): ServiceAccounts,
// the Services productpage, details, reviews, ratings (port 9080) plus the
// versioned reviews-v1/-v2/-v3 that Gateway API routes split between, and
// Deployments productpage-v1, details-v1, ratings-v1, reviews-v1/-v2/-v3.
//
//go:embed bookinfo/bookinfo.yaml
var Bookinfo []byte
