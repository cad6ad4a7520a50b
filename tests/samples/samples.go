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
