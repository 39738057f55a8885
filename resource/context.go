package resource

import "context"

// tokenKey is the context key of the verified access token.
type contextKey struct{}

// FromContext returns the access token that [Verifier.Handler] verified
// for the request whose context is ctx, and whether there is one.
func FromContext(ctx context.Context) (*AccessToken, bool) {
	at, ok := ctx.Value(contextKey{}).(*AccessToken)
	return at, ok && at != nil
}

// NewContext returns a copy of ctx that carries at, for transports other
// than net/http that verify with [Verifier.Verify] and hand the token on
// to their handlers, which read it with FromContext.
func NewContext(ctx context.Context, at *AccessToken) context.Context {
	return context.WithValue(ctx, contextKey{}, at)
}
