package caserver

import (
	"errors"
	"fmt"

	"github.com/weftmesh/weft/pilot/ca"
	"google.golang.org/grpc/codes"
)

// Reason says why a CSR was refused. The same small enum is the log field,
// the gRPC status message prefix and the "reason" label of
// weft_ca_csr_refused_total, so an operator can go from a dashboard to the
// log line to the agent's error without translation.
type Reason string

// Refusal reasons.
const (
	ReasonMissingToken      Reason = "missing_token"       // no bearer token in the call
	ReasonInvalidToken      Reason = "invalid_token"       // TokenReview: expired, forged, revoked, bound pod gone
	ReasonWrongAudience     Reason = "wrong_audience"      // token not issued for audience weft-ca
	ReasonNotServiceAccount Reason = "not_service_account" // authenticated, but not a ServiceAccount
	ReasonNotPodBound       Reason = "not_pod_bound"       // legacy or unbound token: no pod to check
	ReasonPodNotFound       Reason = "pod_not_found"       // the pod the token is bound to no longer exists
	ReasonPodMismatch       Reason = "pod_mismatch"        // pod UID or ServiceAccount differ from the token
	ReasonRateLimited       Reason = "rate_limited"        // this identity's CSR budget is used up
	ReasonBadCSR            Reason = "bad_csr"             // unparsable CSR or bad self-signature
	ReasonSANMismatch       Reason = "san_mismatch"        // CSR names anything but the caller's SPIFFE ID
	ReasonCARequested       Reason = "ca_requested"        // CSR asks for CA=true or keyCertSign
	ReasonUnsupportedKey    Reason = "unsupported_key"     // key type or size not accepted
	ReasonAuthUnavailable   Reason = "auth_unavailable"    // API server unreachable: retry later
	ReasonCAUnavailable     Reason = "ca_unavailable"      // no CA loaded yet or CA expired
	ReasonInternal          Reason = "internal"            // signing failed on the CA side
)

// Code is the gRPC status code a refusal is returned with: the agent retries
// Unavailable and ResourceExhausted, and gives up on the others.
func (r Reason) Code() codes.Code {
	switch r {
	case ReasonMissingToken, ReasonInvalidToken, ReasonWrongAudience, ReasonNotServiceAccount, ReasonNotPodBound:
		return codes.Unauthenticated
	case ReasonPodNotFound, ReasonPodMismatch, ReasonSANMismatch, ReasonCARequested:
		return codes.PermissionDenied
	case ReasonRateLimited:
		return codes.ResourceExhausted
	case ReasonBadCSR, ReasonUnsupportedKey:
		return codes.InvalidArgument
	case ReasonAuthUnavailable, ReasonCAUnavailable:
		return codes.Unavailable
	default:
		return codes.Internal
	}
}

// RefusalError carries a Reason with the underlying cause; authenticators
// return it so the server knows how to label a failure.
type RefusalError struct {
	Reason Reason
	Err    error
}

// Error implements error.
func (e *RefusalError) Error() string { return fmt.Sprintf("%s: %v", e.Reason, e.Err) }

// Unwrap exposes the cause to errors.Is/As.
func (e *RefusalError) Unwrap() error { return e.Err }

// refuse builds a RefusalError.
func refuse(r Reason, format string, args ...any) error {
	return &RefusalError{Reason: r, Err: fmt.Errorf(format, args...)}
}

// reasonOf maps any error of the request path to its Reason.
func reasonOf(err error) Reason {
	var re *RefusalError
	switch {
	case errors.As(err, &re):
		return re.Reason
	case errors.Is(err, ca.ErrSANMismatch), errors.Is(err, ca.ErrWrongTrustDomain):
		return ReasonSANMismatch
	case errors.Is(err, ca.ErrCARequested):
		return ReasonCARequested
	case errors.Is(err, ca.ErrBadCSR):
		return ReasonBadCSR
	case errors.Is(err, ca.ErrUnsupportedKey):
		return ReasonUnsupportedKey
	case errors.Is(err, ca.ErrCAExpired):
		return ReasonCAUnavailable
	default:
		return ReasonInternal
	}
}
