package resource

import (
	"fmt"
	"testing"
)

// TestKeyCacheBounded checks that the header cache holds only accepted
// proofs' headers, at most maxHeadersPerKey of one key and
// maxCachedHeaders in all.
func TestKeyCacheBounded(t *testing.T) {
	s := newSetup(t, "EdDSA", nil)
	// Refused proofs add nothing, however valid their header.
	for range 5 {
		k := newTestKey(t, "EdDSA")
		c := claims(s.token)
		s.v.Check(s.request(k.proof(t, k.header(), c)))
	}
	if n := len(s.v.keys.keys); n != 0 {
		t.Errorf("after refused proofs the cache holds %d headers; want 0", n)
	}
	// One client varying its header fills only its share.
	for i := range 10 {
		h := s.key.header()
		h["kid"] = fmt.Sprint(i)
		if _, err := s.v.Check(s.request(s.key.proof(t, h, claims(s.token)))); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.v.keys.keys); n != maxHeadersPerKey {
		t.Errorf("one key's headers: %d cached; want %d", n, maxHeadersPerKey)
	}
	// Many keys: the cache stays bounded.
	var kc keyCache
	for i := range maxCachedHeaders + 100 {
		kc.put(fmt.Sprint("h", i), &proofKey{jkt: fmt.Sprint("k", i)})
	}
	if len(kc.keys) != maxCachedHeaders || len(kc.perJKT) != maxCachedHeaders {
		t.Errorf("cache of %d keys, %d counts; want %d", len(kc.keys), len(kc.perJKT), maxCachedHeaders)
	}
}
