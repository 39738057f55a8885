package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/dpopkit/dpop"
	"golang.org/x/oauth2"
)

func newTestHandler(exchanged *[]string) *callbackHandler {
	return newCallbackHandler("the-state", &dpop.Metadata{Issuer: "https://as.example"}, func(code string) (*oauth2.Token, error) {
		*exchanged = append(*exchanged, code)
		return &oauth2.Token{AccessToken: "at-" + code, TokenType: "DPoP"}, nil
	})
}

func serve(h http.Handler, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w
}

func TestCallbackState(t *testing.T) {
	var exchanged []string
	h := newTestHandler(&exchanged)
	for _, target := range []string{
		"/callback?code=c1",                     // no state
		"/callback?code=c1&state=other",         // another login's state
		"/callback?code=c1&state=the-stat",      // a prefix
		"/callback?error=access_denied&state=x", // an error for another login
	} {
		if w := serve(h, target); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "state does not match") {
			t.Errorf("%s: HTTP %d %q; want 400 state mismatch", target, w.Code, w.Body.String())
		}
	}
	if w := serve(h, "/other?state=the-state&code=c1"); w.Code != http.StatusNotFound {
		t.Errorf("/other: HTTP %d; want 404", w.Code)
	}
	select {
	case r := <-h.done:
		t.Fatalf("login ended by an invalid callback: %+v", r)
	default:
	}
	if len(exchanged) != 0 {
		t.Fatalf("exchanged %q for invalid callbacks", exchanged)
	}

	w := serve(h, "/callback?code=good&state=the-state&iss=https%3A%2F%2Fas.example")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="login-ok"`) {
		t.Errorf("valid callback: HTTP %d %q; want 200 login-ok", w.Code, w.Body.String())
	}
	if want := "cli-login is now logged in to https://as.example."; !strings.Contains(w.Body.String(), want) {
		t.Errorf("result page %q does not say %q", w.Body.String(), want)
	}
	r := <-h.done
	if r.err != nil || r.tok.AccessToken != "at-good" {
		t.Errorf("result = %+v; want the exchanged token", r)
	}
	if w := serve(h, "/callback?code=again&state=the-state"); w.Code != http.StatusConflict {
		t.Errorf("second valid callback: HTTP %d; want 409", w.Code)
	}
	if !slices.Equal(exchanged, []string{"good"}) {
		t.Errorf("exchanged %q; want [good]", exchanged)
	}
}

func TestCallbackErrors(t *testing.T) {
	for _, tc := range []struct {
		target, want string
	}{
		{"/callback?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state=the-state", "access_denied"},
		{"/callback?code=c&state=the-state&iss=https%3A%2F%2Fevil.example", "RFC 9207"},
		{"/callback?state=the-state", "neither code nor error"},
	} {
		var exchanged []string
		h := newTestHandler(&exchanged)
		w := serve(h, tc.target)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `id="login-failed"`) {
			t.Errorf("%s: HTTP %d %q; want 400 login-failed", tc.target, w.Code, w.Body.String())
		}
		if strings.Contains(w.Body.String(), "<b>") {
			t.Errorf("%s: page not escaped: %q", tc.target, w.Body.String())
		}
		r := <-h.done
		if r.err == nil || !strings.Contains(r.err.Error(), tc.want) || !strings.HasPrefix(r.err.Error(), "cli-login: ") {
			t.Errorf("%s: err = %v; want one mentioning %q", tc.target, r.err, tc.want)
		}
		if len(exchanged) != 0 {
			t.Errorf("%s: exchanged %q", tc.target, exchanged)
		}
	}
	var ae *dpop.AuthResponseError
	h := newTestHandler(new([]string))
	serve(h, "/callback?error=access_denied&state=the-state")
	if r := <-h.done; !errors.As(r.err, &ae) || ae.ErrorCode != "access_denied" {
		t.Errorf("err = %v; want *dpop.AuthResponseError access_denied", r.err)
	}
}
