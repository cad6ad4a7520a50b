// Package cav1 is the generated Go code of Weft's CA service
// (weft.ca.v1.CertificateService, see ca.proto): weft-agent sends a CSR with
// its pod's projected ServiceAccount token and pilot answers with a SPIFFE
// X.509-SVID (https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md)
// and the trust bundle.
//
// Regenerate with `go generate ./api/ca/v1/` after installing the plugins:
//
//	GOBIN=$PWD/.cache/bin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	GOBIN=$PWD/.cache/bin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
package cav1

//go:generate protoc --plugin=protoc-gen-go=../../../.cache/bin/protoc-gen-go --plugin=protoc-gen-go-grpc=../../../.cache/bin/protoc-gen-go-grpc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative ca.proto
