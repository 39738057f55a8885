package dpop

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file keeps secrets and raw server strings out of error text: the
// redaction of a request's secrets from a server's answer to it, and the
// quoting of server strings.

// maxQuoted bounds a string from a server, or from a request, shown in
// error text.
const maxQuoted = 256

// quote returns s for error text: cut to maxQuoted bytes (marked with
// "…"), and quoted with every byte outside printable ASCII escaped, so that
// no control or bidi character from a server reaches a log, and a long
// body cannot flood one.
func quote(s string) string {
	cut := len(s) > maxQuoted
	if cut {
		s = s[:maxQuoted]
		for i := 0; i < 3 && !utf8.ValidString(s); i++ {
			s = s[:len(s)-1] // do not split a rune
		}
	}
	q := strconv.QuoteToASCII(s)
	if cut {
		q += "…"
	}
	return q
}

// secretParams are the form parameters of token-side requests whose values
// are secrets (RFC 6749 §2.3.1, §4.1.3, §6; RFC 7636 §4.5; RFC 8628 §3.4;
// RFC 7521 §4.2; RFC 8693 §2.1; RFC 7009 §2.1).
var secretParams = []string{
	"client_secret", "code", "code_verifier", "refresh_token", "device_code", "password",
	"client_assertion", "assertion", "subject_token", "actor_token", "token",
}

// maxSecretForm bounds how much of a request body requestSecrets reads.
const maxSecretForm = 64 << 10

// requestSecrets returns the secrets req carried: its Authorization and
// DPoP header values, the credentials of a Basic header, and the values of
// its form's secret parameters (read again through GetBody; x/oauth2 and
// PAR requests have one). req may be nil.
func requestSecrets(req *http.Request) []string {
	if req == nil {
		return nil
	}
	var out []string
	for _, k := range []string{"Authorization", "Dpop"} {
		for _, v := range req.Header[k] {
			out = append(out, v)
			if _, cred, ok := strings.Cut(v, " "); ok {
				out = append(out, cred)
			}
		}
	}
	if _, pass, ok := req.BasicAuth(); ok {
		out = append(out, pass)
		if u, err := url.QueryUnescape(pass); err == nil {
			out = append(out, u)
		}
	}
	if req.GetBody == nil {
		return out
	}
	body, err := req.GetBody()
	if err != nil {
		return out
	}
	defer body.Close()
	b, _ := io.ReadAll(io.LimitReader(body, maxSecretForm))
	form, _ := url.ParseQuery(string(b))
	for _, k := range secretParams {
		for _, v := range form[k] {
			out = append(out, v, url.QueryEscape(v))
		}
	}
	return out
}

// redact returns s with every secret of at least minSecret bytes replaced
// by "[redacted]".
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= minSecret && strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

// minSecret is the length below which a request value is not redacted
// from server text: a client_id "c" or a code "1" would blank out every
// such letter of a description, and reveals nothing.
const minSecret = 4
