package dpop_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"golang.org/x/oauth2"
)

// FuzzCheckResponse feeds CheckResponse arbitrary statuses, challenge,
// nonce and Date headers and bodies: it must not panic, a challenge it
// reports has the response's status and only short, printable strings,
// and resp.Body still reads the whole body byte for byte.
func FuzzCheckResponse(f *testing.F) {
	f.Add(401, `DPoP error="use_dpop_nonce", algs="ES256 EdDSA"`, "n1", "", []byte(nil))
	f.Add(400, "", "n1", "Mon, 02 Jan 2006 15:04:05 GMT", []byte(`{"error":"use_dpop_nonce"}`))
	f.Add(400, "", "", "Mon, 02 Jan 2006 15:04:05 GMT", []byte(`{"error":"invalid_dpop_proof","error_description":"iat"}`))
	f.Add(401, `Bearer, DPoP error="invalid_dpop_proof", error_description="\u202e"`, "bad nonce", "x", []byte("body"))
	f.Add(200, "DPoP", "n", "", bytes.Repeat([]byte("{"), 5000))
	f.Fuzz(func(t *testing.T, status int, wwwAuth, nonce, date string, body []byte) {
		status = 100 + (status%900+900)%900
		h := http.Header{}
		for k, v := range map[string]string{"WWW-Authenticate": wwwAuth, "DPoP-Nonce": nonce, "Date": date} {
			if v != "" {
				h.Set(k, v)
			}
		}
		resp := &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body))}
		err := dpop.CheckResponse(resp)
		var ce *dpop.ChallengeError
		if err != nil && (!errors.As(err, &ce) || ce.StatusCode != status) {
			t.Fatalf("CheckResponse = %v; want nil or a ChallengeError with status %d", err, status)
		}
		if ce != nil {
			checkClean(t, "ErrorCode", ce.ErrorCode, 80)
			checkClean(t, "Description", ce.Description, 300)
			for _, a := range ce.Algs {
				checkClean(t, "an alg", a, 80)
			}
			checkCleanText(t, "Error()", ce.Error(), 2<<10)
		}
		got, rerr := io.ReadAll(resp.Body)
		if rerr != nil || !bytes.Equal(got, body) {
			t.Fatalf("body after CheckResponse: %q, %v; want %q", got, rerr, body)
		}
	})
}

// FuzzDiscover serves arbitrary metadata documents to Discover: no
// panic, and a document it accepts names the issuer and has only https or
// loopback endpoints.
func FuzzDiscover(f *testing.F) {
	const issuer = "https://as.example"
	f.Add([]byte(`{"issuer":"https://as.example","token_endpoint":"https://as.example/token"}`))
	f.Add([]byte(`{"issuer":"https://as.example","token_endpoint":"http://127.0.0.1:8080/token","jwks_uri":"http://as.example/jwks"}`))
	f.Add([]byte(`{"issuer":"https://as.example","token_endpoint":"https://as.example/token","authorization_endpoint":"HTTP://localhost/a"}`))
	f.Add([]byte(`{"issuer":"https://as.example/","token_endpoint":"//as.example/token"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		ctx := withClient(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(bytes.NewReader(doc)), Request: r}, nil
		})})
		m, err := dpop.Discover(ctx, issuer)
		if err != nil {
			return
		}
		if m.Issuer != issuer || m.TokenEndpoint == "" {
			t.Fatalf("accepted issuer %q, token endpoint %q", m.Issuer, m.TokenEndpoint)
		}
		for _, e := range []string{m.AuthorizationEndpoint, m.TokenEndpoint, m.DeviceAuthorizationEndpoint,
			m.PushedAuthorizationRequestEndpoint, m.RevocationEndpoint, m.JWKSURI} {
			if e == "" {
				continue
			}
			u, err := url.Parse(e)
			if err != nil {
				t.Fatalf("accepted endpoint %q: %v", e, err)
			}
			host := u.Hostname()
			switch s := strings.ToLower(u.Scheme); {
			case s == "https" && host != "":
			case s == "http" && (strings.EqualFold(host, "localhost") || strings.HasPrefix(host, "127.") || host == "::1"):
			default:
				t.Fatalf("accepted endpoint %q: want https, or http on loopback", e)
			}
		}
	})
}

// FuzzTokenResponse serves arbitrary token responses, JSON or form, to
// Config.Exchange: no panic, and a token it returns has token_type DPoP
// and did not arrive expired (no negative expires_in).
func FuzzTokenResponse(f *testing.F) {
	f.Add([]byte(`{"access_token":"a","token_type":"DPoP","expires_in":60}`), "application/json")
	f.Add([]byte(`{"access_token":"a","token_type":"dpop","expires_in":"-1"}`), "application/json")
	f.Add([]byte(`access_token=a&token_type=DPoP&expires_in=-5`), "application/x-www-form-urlencoded")
	f.Add([]byte(`access_token=a&token_type=Bearer`), "text/plain")
	f.Add([]byte(`{"access_token":"a","token_type":"DPoP","expires_in":-0}`), "application/json; charset=utf-8")
	s := newSigner(f)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		ctx := withClient(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {contentType}},
				Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
		})})
		cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: "https://as.example/token"}}, Signer: s}
		start := time.Now()
		tok, err := cfg.Exchange(ctx, "code")
		if err != nil {
			return
		}
		if !strings.EqualFold(tok.TokenType, "DPoP") {
			t.Fatalf("token_type %q accepted", tok.TokenType)
		}
		if !tok.Expiry.IsZero() && tok.Expiry.Before(start) {
			t.Fatalf("token accepted already expired (expires_in %v)", tok.Extra("expires_in"))
		}
	})
}
