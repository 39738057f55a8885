package dpoptest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// This file holds every way the servers answer: JSON bodies and OAuth
// errors (RFC 6749 §5.1, §5.2), DPoP challenges (RFC 9449 §7.1, §9) and
// redirects (RFC 6749 §4.1.2).

// oauthError is an OAuth error response (RFC 6749 §5.2).
type oauthError struct {
	status int
	code   string
	desc   string
	basic  bool // the client tried client_secret_basic: add a Basic challenge
}

func badRequest(code, desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: code, desc: desc}
}

// writeError answers an OAuth error as JSON (RFC 6749 §5.2) with the
// authorization server's nonce when nonces are required.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *oauthError) {
	record(r).Error = e.code
	if e.basic && e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="dpoptest"`)
	}
	s.writeAS(w, e.status, map[string]string{"error": e.code, "error_description": quoteParam(e.desc)})
}

// writeAS answers a JSON body from the authorization server, with its
// current DPoP-Nonce when nonces are required (RFC 9449 §8).
func (s *Server) writeAS(w http.ResponseWriter, status int, v any) {
	if s.cfg.RequireNonce && (status >= 300 || !s.cfg.NoNonceOnSuccess) {
		w.Header().Set("DPoP-Nonce", s.asNonce.get())
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, status, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("dpoptest: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

// challenge answers 401 with a DPoP WWW-Authenticate challenge
// (RFC 9449 §7.1, §9) and the current nonce when nonces are required.
func (s *Server) challenge(w http.ResponseWriter, rec *Request, code, desc string) {
	rec.Error = code
	var b strings.Builder
	if s.cfg.FAPI2 {
		b.WriteString("dPoP") // as the FAPI 2.0 conformance suite does: schemes are case-insensitive
	} else {
		b.WriteString("DPoP")
	}
	sep := " "
	if code != "" {
		b.WriteString(` error="` + code + `", error_description="` + quoteParam(desc) + `"`)
		sep = ", "
	}
	if code != "use_dpop_nonce" {
		b.WriteString(sep + `algs="` + strings.Join(s.verifier.AllowedAlgs(), " ") + `"`)
	}
	w.Header().Set("WWW-Authenticate", b.String())
	if s.cfg.RequireNonce {
		w.Header().Set("DPoP-Nonce", s.rsNonce.get())
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
}

// quoteParam makes desc safe inside a quoted-string: printable ASCII
// without '"' or '\' (RFC 6750 §3 error_description syntax), truncated.
func quoteParam(desc string) string {
	b := make([]byte, 0, len(desc))
	for i := 0; i < len(desc) && len(b) < maxWWWAuthDesc; i++ {
		c := desc[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\'')
		case c < 0x20 || c > 0x7e:
			b = append(b, '?')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

const maxWWWAuthDesc = 200

// redirect answers 302 to uri with params added to its query.
func redirect(w http.ResponseWriter, uri string, params url.Values) {
	u, _ := url.Parse(uri) // validated by redirectOK
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

func quote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return "\"" + s + "\""
}
