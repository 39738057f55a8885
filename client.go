package dpop

import (
	"context"
	"errors"
	"net/http"

	"golang.org/x/oauth2"
)

// NewClient returns an HTTP client whose requests carry a token from src
// with a DPoP proof signed by s: the DPoP counterpart of
// [oauth2.NewClient], for a token loaded from storage (keystore.LoadToken,
// wrapped with keystore.SavingTokenSource to save refreshed tokens). The
// token must be bound to s's key. Its Transport's Base is the transport of the
// context's [oauth2.HTTPClient], if one is set; it has its own
// resource-server nonce cache. A nil src makes a client that sends proofs
// without tokens.
//
// The client answers the resource server's nonce challenges, but refreshes
// only as src does: pass a source that refreshes, such as
// [Config.TokenSource]. Any Bearer token is refused ([Transport.AllowBearer]).
// For the tokens a grant obtains, [Config.Client] and
// [ClientCredentials.Client] build the client, as their x/oauth2
// counterparts do.
func NewClient(ctx context.Context, src oauth2.TokenSource, s *Signer) *http.Client {
	return dpopClient(ctx, src, s, false, nil)
}

// dpopClient returns an HTTP client whose requests carry tokens from src
// with proofs from s, over the context's transport, with a resource-server
// nonce cache of its own.
func dpopClient(ctx context.Context, src oauth2.TokenSource, s *Signer, allowBearer bool, trace *Trace) *http.Client {
	var base http.RoundTripper = failingTransport{errors.New("dpop: the client was made with a nil context")}
	if ctx != nil {
		base = contextTransport(ctx)
	}
	return &http.Client{Transport: &Transport{
		Base:        base,
		Source:      src,
		Signer:      s,
		AllowBearer: allowBearer,
		Trace:       trace,
	}}
}
