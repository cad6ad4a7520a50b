package caserver

import (
	"context"
	"slices"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Extra keys the API server attaches to tokens bound to a pod
// (https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/#bound-service-account-token-volume).
const (
	ExtraPodName = "authentication.kubernetes.io/pod-name"
	ExtraPodUID  = "authentication.kubernetes.io/pod-uid"
)

// TokenAuthenticator validates projected ServiceAccount tokens with the
// TokenReview API and checks the bound pod with a live GET. Pilot needs RBAC
// create on tokenreviews and get on pods.
type TokenAuthenticator struct {
	Client kubernetes.Interface
	// Audience the token must be issued for (DefaultAudience if empty).
	Audience string
}

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create

// Authenticate implements Authenticator with a TokenReview restricted to the
// audience; namespace and ServiceAccount come from the reviewed username,
// never from the request.
func (a *TokenAuthenticator) Authenticate(ctx context.Context, token string) (Caller, error) {
	aud := a.Audience
	if aud == "" {
		aud = DefaultAudience
	}
	tr, err := a.Client.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{aud}},
	}, metav1.CreateOptions{})
	if err != nil {
		return Caller{}, refuse(ReasonAuthUnavailable, "token review: %w", err)
	}
	st := tr.Status
	if !st.Authenticated {
		if strings.Contains(strings.ToLower(st.Error), "audience") {
			return Caller{}, refuse(ReasonWrongAudience, "token review: %s", st.Error)
		}
		return Caller{}, refuse(ReasonInvalidToken, "token review: %s", orUnknown(st.Error))
	}
	if !slices.Contains(st.Audiences, aud) {
		return Caller{}, refuse(ReasonWrongAudience, "token audiences %v do not include %q", st.Audiences, aud)
	}
	ns, sa, ok := splitServiceAccount(st.User.Username)
	if !ok {
		return Caller{}, refuse(ReasonNotServiceAccount, "user %q is not a service account", st.User.Username)
	}
	c := Caller{Namespace: ns, ServiceAccount: sa, Expiry: jwtExpiry(token)}
	if v := st.User.Extra[ExtraPodName]; len(v) == 1 {
		c.PodName = v[0]
	}
	if v := st.User.Extra[ExtraPodUID]; len(v) == 1 {
		c.PodUID = v[0]
	}
	if c.PodName == "" || c.PodUID == "" {
		return Caller{}, refuse(ReasonNotPodBound, "token of %s/%s is not bound to a pod", ns, sa)
	}
	return c, nil
}

// +kubebuilder:rbac:groups="",resources=pods,verbs=get

// CheckBinding implements Authenticator: the token's pod must still exist
// with the same UID and run as the token's ServiceAccount.
func (a *TokenAuthenticator) CheckBinding(ctx context.Context, c Caller) error {
	pod, err := a.Client.CoreV1().Pods(c.Namespace).Get(ctx, c.PodName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return refuse(ReasonPodNotFound, "pod %s/%s no longer exists", c.Namespace, c.PodName)
	}
	if err != nil {
		return refuse(ReasonAuthUnavailable, "get pod %s/%s: %w", c.Namespace, c.PodName, err)
	}
	if string(pod.UID) != c.PodUID {
		return refuse(ReasonPodNotFound, "pod %s/%s was replaced (uid %s, token for %s)", c.Namespace, c.PodName, pod.UID, c.PodUID)
	}
	if sa := orDefaultSA(pod.Spec.ServiceAccountName); sa != c.ServiceAccount {
		return refuse(ReasonPodMismatch, "pod %s/%s runs as %q, token is for %q", c.Namespace, c.PodName, sa, c.ServiceAccount)
	}
	return nil
}

// splitServiceAccount parses "system:serviceaccount:<ns>:<name>".
func splitServiceAccount(user string) (ns, name string, ok bool) {
	rest, found := strings.CutPrefix(user, "system:serviceaccount:")
	if !found {
		return "", "", false
	}
	ns, name, found = strings.Cut(rest, ":")
	if !found || ns == "" || name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	return ns, name, true
}

func orDefaultSA(sa string) string {
	if sa == "" {
		return "default"
	}
	return sa
}

func orUnknown(s string) string {
	if s == "" {
		return "not authenticated"
	}
	return s
}
