package generator

import (
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rawbufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// sdsConfig points a secret at the agent's SDS server through the
// bootstrap's sds-grpc cluster, never at ADS: secrets (the private key in
// particular) stay on the node and pilot never sees them
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/extensions/transport_sockets/tls/v3/secret.proto#envoy-v3-api-msg-extensions-transport-sockets-tls-v3-sdssecretconfig).
func sdsConfig() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion: corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_ApiConfigSource{
			ApiConfigSource: &corev3.ApiConfigSource{
				ApiType:                   corev3.ApiConfigSource_GRPC,
				TransportApiVersion:       corev3.ApiVersion_V3,
				SetNodeOnFirstMessageOnly: true,
				GrpcServices: []*corev3.GrpcService{{
					TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
						EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: SDSClusterName},
					},
				}},
			},
		},
	}
}

func sdsSecret(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: sdsConfig()}
}

// commonTLS presents the workload SVID and verifies the peer against the
// mesh roots, accepting only the given SPIFFE IDs (exact) or, when prefix is
// set, any ID in the trust domain.
func commonTLS(exactIDs []string, prefix string) *tlsv3.CommonTlsContext {
	var sans []*tlsv3.SubjectAltNameMatcher
	for _, id := range exactIDs {
		sans = append(sans, uriSAN(&matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Exact{Exact: id},
		}))
	}
	if prefix != "" {
		sans = append(sans, uriSAN(&matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: prefix},
		}))
	}
	return &tlsv3.CommonTlsContext{
		TlsParams: &tlsv3.TlsParameters{
			TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2,
		},
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsSecret(SecretDefault)},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sans},
				ValidationContextSdsSecretConfig: sdsSecret(SecretRootCA),
			},
		},
	}
}

func uriSAN(m *matcherv3.StringMatcher) *tlsv3.SubjectAltNameMatcher {
	return &tlsv3.SubjectAltNameMatcher{SanType: tlsv3.SubjectAltNameMatcher_URI, Matcher: m}
}

// upstreamTLS is the client side of mesh mTLS: it offers ALPNWeft so the
// server's inbound listener recognises mesh traffic, and accepts only the
// destination's SPIFFE IDs (Istio's secure naming,
// https://istio.io/latest/docs/concepts/security/#secure-naming).
func upstreamTLS(sni string, peerIDs []string) *corev3.TransportSocket {
	ctx := commonTLS(slices.Clone(peerIDs), "")
	ctx.AlpnProtocols = []string{ALPNWeft}
	return &corev3.TransportSocket{
		Name: wellknown.TransportSocketTLS,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(&tlsv3.UpstreamTlsContext{
			CommonTlsContext: ctx,
			Sni:              sni,
		})},
	}
}

// downstreamTLS is the server side of mesh mTLS on the inbound listener: a
// client certificate is required and must chain to the mesh roots and carry
// a SPIFFE ID of this trust domain.
func downstreamTLS(trustDomain string) *corev3.TransportSocket {
	return &corev3.TransportSocket{
		Name: wellknown.TransportSocketTLS,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(&tlsv3.DownstreamTlsContext{
			CommonTlsContext:         commonTLS(nil, "spiffe://"+trustDomain+"/"),
			RequireClientCertificate: wrapperspb.Bool(true),
		})},
	}
}

func rawBuffer() *corev3.TransportSocket {
	return &corev3.TransportSocket{
		Name:       wellknown.TransportSocketRawBuffer,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(&rawbufferv3.RawBuffer{})},
	}
}
