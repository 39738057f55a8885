package resource

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/dpopkit/dpop/internal/htu"
)

// Request is what [Verifier.Verify] reads of a request: for transports
// other than net/http, such as gRPC, whose metadata carries the two
// headers.
type Request struct {
	// Method is the request's method; the proof's htm must equal it
	// exactly (RFC 9449 §4.3 point 8). gRPC calls are POST.
	Method string

	// URL is the URL the client sent the request to, such as
	// "https://api.example.com/pkg.Service/Method"; the proof's htu must
	// name it, query and fragment ignored (RFC 9449 §4.3 point 9). When
	// [Config.PublicURLs] is set only its path counts, and URL may be just
	// the path: the htu must name one of the public URLs followed by it.
	URL string

	// Authorization holds every value of the Authorization header
	// (RFC 9110 §11.6.2), DPoP every value of the DPoP header (RFC 9449
	// §4.1). More than one of either is refused.
	Authorization []string
	DPoP          []string

	// PathHTU also accepts a proof whose htu is the request's path alone
	// ("/pkg.Service/Method"), as some gRPC clients sign it. RFC 9449
	// §4.2 asks for the full URL, and such a proof names no host: one made
	// for the same path on another server that accepts the same tokens
	// passes here too (the replay store still accepts it once). Leave it
	// false unless such clients must be served; the proof is still bound
	// to the method, the key and the token.
	PathHTU bool
}

// target is the public URL a proof's htu must name: one of bases followed
// by path, the path as sent on the wire without the query.
type target struct {
	bases    []string // scheme://host[:port][/prefix], no trailing "/"
	path     string   // starts with "/"
	pathOnly bool     // the path alone is an htu too (Request.PathHTU)
}

// match reports whether the htu claim names t (RFC 9449 §4.3 point 9):
// string-equal to a base followed by the path, as most clients send it, or
// equal to one once both are normalised (RFC 3986 §6.2.2, §6.2.3).
func (t *target) match(claim []byte) bool {
	if t.pathOnly && string(claim) == t.path {
		return true
	}
	for _, b := range t.bases {
		if len(claim) == len(b)+len(t.path) && string(claim[:len(b)]) == b && string(claim[len(b):]) == t.path {
			return true
		}
	}
	got, err := htu.Normalize(string(claim))
	if err != nil {
		return false
	}
	for _, b := range t.bases {
		if want, err := htu.Normalize(b + t.path); err == nil && want == got {
			return true
		}
	}
	return false
}

// String returns the first public URL of t, for error texts.
func (t *target) String() string {
	if len(t.bases) == 0 {
		return t.path
	}
	return t.bases[0] + t.path
}

// publicBase returns the normal form of a public URL of the API without
// its trailing "/": "https://api.example.com", "https://x.example/prefix".
func publicBase(raw string) (string, error) {
	if strings.ContainsAny(raw, "?#") {
		return "", errors.New("has a query or fragment")
	}
	n, err := htu.Normalize(raw)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(n, "/"), nil
}

// urlPath returns the path of raw, an absolute URL or an absolute path, as
// written, without query and fragment; "/" when empty.
func urlPath(raw string) (string, bool) {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if !strings.HasPrefix(raw, "/") {
		i := strings.Index(raw, "://")
		if i < 0 {
			return "", false
		}
		rest := raw[i+3:]
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			return "/", true
		}
		raw = rest[j:]
	}
	return raw, true
}

// urlBase returns "scheme://authority" of raw, an absolute URL.
func urlBase(raw string) (string, bool) {
	i := strings.Index(raw, "://")
	if i <= 0 {
		return "", false
	}
	end := len(raw)
	if j := strings.IndexAny(raw[i+3:], "/?#"); j >= 0 {
		end = i + 3 + j
	}
	return raw[:end], true
}

// requestPath returns the path r was sent to, as on the wire, without its
// query (RFC 9112 §3.2): from RequestURI, which handlers before this one
// (http.StripPrefix) leave as it came.
func requestPath(r *http.Request) (string, bool) {
	uri := r.RequestURI
	if uri == "" { // a request made in a program, not read by a server
		p := r.URL.EscapedPath()
		if p == "" {
			p = "/"
		}
		return p, strings.HasPrefix(p, "/")
	}
	if uri == "*" {
		return "", false
	}
	return urlPath(uri) // origin-form, or absolute-form (RFC 9112 §3.2.2)
}

// Authorization schemes (RFC 9449 §7.1, RFC 6750 §2.1).
const (
	schemeDPoP   = "DPoP"
	schemeBearer = "Bearer"
)

// maxAuthorizationLen bounds the Authorization header read.
const maxAuthorizationLen = 16 << 10

// parseAuthorization returns the scheme and the token of the
// Authorization header values vals.
func parseAuthorization(vals []string) (scheme, token string, e *Error) {
	if len(vals) == 0 || len(vals) == 1 && vals[0] == "" {
		return "", "", refuse("", ReasonMissingToken, errNoToken)
	}
	if len(vals) > 1 {
		return "", "", refuse(ErrorInvalidRequest, ReasonMalformed, errors.New(strconv.Itoa(len(vals))+" Authorization headers"))
	}
	v := vals[0]
	if len(v) > maxAuthorizationLen {
		return "", "", refuse(ErrorInvalidRequest, ReasonTooLarge, errors.New("Authorization header longer than "+strconv.Itoa(maxAuthorizationLen)+" bytes"))
	}
	s, rest, _ := strings.Cut(v, " ")
	switch {
	case strings.EqualFold(s, schemeDPoP):
		scheme = schemeDPoP
	case strings.EqualFold(s, schemeBearer):
		scheme = schemeBearer
	default:
		return "", "", refuse("", ReasonScheme, errors.New("Authorization scheme "+quoteUntrusted(s)+" not accepted"))
	}
	token = strings.TrimLeft(rest, " ")
	if !isToken68(token) {
		return "", "", refuse(ErrorInvalidRequest, ReasonMalformed, errors.New("Authorization credentials are not a token68"))
	}
	return scheme, token, nil
}

// isToken68 reports whether s is a token68 (RFC 9110 §11.2).
func isToken68(s string) bool {
	i := 0
	for i < len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			break
		}
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

var (
	errNoToken      = errors.New("no Authorization header")
	errNoProof      = errors.New("no DPoP header")
	errNonceMissing = errors.New("the route requires a server nonce and the proof has none")
	errNonceStale   = errors.New("the proof's nonce is not one this server accepts now")
)
