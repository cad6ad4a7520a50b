package generator

import (
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
)

// AuditLogPrefix starts every line the sidecar logs for a request an AUDIT
// AuthorizationPolicy would have denied, so `kubectl logs -c weft-sidecar |
// grep weft-audit` finds them.
const AuditLogPrefix = "weft-audit"

// auditLog writes one line to Envoy's stdout for each request whose RBAC
// shadow rules (AUDIT policies) say "denied", naming the policy
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/http/http_filters/rbac_filter#dynamic-metadata).
func auditLog() []*accesslogv3.AccessLog {
	key := RBACAuditPrefix + "shadow_engine_result"
	format := AuditLogPrefix + " would deny: %REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% port=%DOWNSTREAM_LOCAL_PORT%" +
		" peer=%DOWNSTREAM_PEER_URI_SAN% policy=%DYNAMIC_METADATA(" + wellknown.HTTPRoleBasedAccessControl + ":" +
		RBACAuditPrefix + "shadow_effective_policy_id)% code=%RESPONSE_CODE%\n"
	return []*accesslogv3.AccessLog{{
		Name: "envoy.access_loggers.stdout",
		Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_MetadataFilter{
			MetadataFilter: &accesslogv3.MetadataFilter{Matcher: &matcherv3.MetadataMatcher{
				Filter: wellknown.HTTPRoleBasedAccessControl,
				Path:   []*matcherv3.MetadataMatcher_PathSegment{{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: key}}},
				Value: &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{
					StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "denied"}},
				}},
			}},
		}},
		ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: mustAny(&streamv3.StdoutAccessLog{
			AccessLogFormat: &streamv3.StdoutAccessLog_LogFormat{LogFormat: &corev3.SubstitutionFormatString{
				Format: &corev3.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corev3.DataSource{
					Specifier: &corev3.DataSource_InlineString{InlineString: format},
				}},
			}},
		})},
	}}
}
