package caserver

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"time"
)

// DefaultAudience is the audience of the projected ServiceAccount token the
// injector mounts for weft-agent; tokens for any other audience (including
// the API server's own) are refused, so a token leaked from elsewhere cannot
// buy a certificate.
const DefaultAudience = "weft-ca"

// Caller is who a validated token was issued to. Namespace and
// ServiceAccount become the SPIFFE ID; PodName/PodUID are the pod the token
// is bound to (from the token's authentication.kubernetes.io/pod-* extras).
type Caller struct {
	Namespace, ServiceAccount string
	PodName, PodUID           string
	// Expiry of the token when known; cached authentications never outlive it.
	Expiry time.Time
}

// Authenticator turns a bearer token into a Caller. It is an interface so
// the security tests run against fakes and production against the API
// server (TokenAuthenticator).
type Authenticator interface {
	// Authenticate validates the token (TokenReview) and returns its
	// subject. Refusals are *RefusalError.
	Authenticate(ctx context.Context, token string) (Caller, error)
	// CheckBinding verifies, live, that the pod the token is bound to still
	// exists with that UID and runs as that ServiceAccount.
	CheckBinding(ctx context.Context, c Caller) error
}

// authCache remembers successful token validations for a short time, keyed
// by the token's SHA-256, so a CSR flood from one identity costs no
// TokenReview calls and is stopped by the rate limiter before it reaches the
// API server. The pod binding is still checked live on every allowed CSR.
type authCache struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	items map[[32]byte]cachedCaller
}

type cachedCaller struct {
	caller Caller
	until  time.Time
}

func newAuthCache(ttl time.Duration, max int) *authCache {
	return &authCache{ttl: ttl, max: max, items: map[[32]byte]cachedCaller{}}
}

func (c *authCache) get(token string, now time.Time) (Caller, bool) {
	if c.ttl <= 0 {
		return Caller{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := sha256.Sum256([]byte(token))
	it, ok := c.items[k]
	if !ok || !now.Before(it.until) {
		delete(c.items, k)
		return Caller{}, false
	}
	return it.caller, true
}

func (c *authCache) put(token string, caller Caller, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	until := now.Add(c.ttl)
	if !caller.Expiry.IsZero() && caller.Expiry.Before(until) {
		until = caller.Expiry
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.items) >= c.max {
		for k, it := range c.items {
			if !now.Before(it.until) || len(c.items) >= c.max {
				delete(c.items, k)
			}
		}
	}
	c.items[sha256.Sum256([]byte(token))] = cachedCaller{caller: caller, until: until}
}

// jwtExpiry reads the exp claim of a JWT without verifying it. It is only
// called on tokens the API server has just validated, to bound caching.
func jwtExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return time.Time{}
	}
	return time.Unix(claims.Exp, 0)
}
