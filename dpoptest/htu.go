package dpoptest

import (
	"errors"

	"github.com/dpopkit/dpop/internal/htu"
)

// normalizeHTU returns the form of an htu claim or request URL that
// [Verifier.Verify] compares (RFC 9449 §4.3 point 9): the normal form of
// RFC 3986 §6.2.2 and §6.2.3 that the resource server and the client share
// (package internal/htu): "scheme://host[:port]/path" with scheme and host
// in lower case, the scheme's default port removed, an empty path replaced
// by "/", percent-encodings normalised, dot segments removed, and the query
// and fragment dropped. Reserved characters keep their form: "/a%2Fb" and
// "/a/b" differ. Only absolute http and https URLs without userinfo are
// accepted.
func normalizeHTU(raw string) (string, error) {
	n, err := htu.Normalize(raw)
	if err != nil {
		return "", errors.New("dpoptest: htu " + quote(raw) + ": " + err.Error())
	}
	return n, nil
}
