package dpop

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestValidNonce(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"abc", true},
		{"!#$%&'()*+,-./0-9:;<=>?@A-Z[]^_`a-z{|}~", true},
		{strings.Repeat("n", maxNonceLen), true},
		{"", false},
		{strings.Repeat("n", maxNonceLen+1), false},
		{`a"b`, false},
		{`a\b`, false},
		{"a b", false},
		{"a\tb", false},
		{"a\x7fb", false},
		{"caf\u00e9", false},
	} {
		if got := validNonce(tt.s); got != tt.want {
			t.Errorf("validNonce(%q) = %v; want %v", tt.s, got, tt.want)
		}
	}
}

func TestNonceCache(t *testing.T) {
	var c NonceCache // the zero value works
	if got := c.Get("https://as.example.com"); got != "" {
		t.Errorf("empty Get = %q; want \"\"", got)
	}
	if !c.Put("https://as.example.com/token", "n1") {
		t.Fatal("Put(valid) = false")
	}
	if !c.Put("https://AS.example.com:443/other", "n2") {
		t.Fatal("Put(valid) = false")
	}
	if got := c.Get("https://as.example.com"); got != "n2" {
		t.Errorf("Get = %q; want the newest, n2 (same origin whatever the case, port or path)", got)
	}
	if c.Put("https://as.example.com", `bad"nonce`) {
		t.Error("Put(invalid nonce) = true")
	}
	if c.Put("not a url", "n3") || c.Put("ftp://as.example.com", "n3") {
		t.Error("Put(bad URL) = true")
	}
	if got := c.Get("https://as.example.com"); got != "n2" {
		t.Errorf("after invalid Puts, Get = %q; want n2", got)
	}
	for _, other := range []string{"http://as.example.com", "https://as.example.com:8443", "https://rs.example.com"} {
		if got := c.Get(other); got != "" {
			t.Errorf("Get(%q) = %q; want \"\" (another origin)", other, got)
		}
	}
	if c.Len() != 1 {
		t.Errorf("Len() = %d; want 1", c.Len())
	}
}

func TestNonceCacheNil(t *testing.T) {
	var c *NonceCache
	if c.Put("https://example.com", "n") || c.Get("https://example.com") != "" || c.Len() != 0 {
		t.Error("a nil cache must remember nothing and not panic")
	}
}

func TestNonceCacheEvictsOldest(t *testing.T) {
	c := NewNonceCache(3)
	for i := range 3 {
		c.Put(fmt.Sprintf("https://o%d.example", i), "a")
	}
	c.Put("https://o0.example", "b") // o0 is now the newest; o1 the oldest
	c.Put("https://o3.example", "a")
	if c.Len() != 3 {
		t.Fatalf("Len() = %d; want 3", c.Len())
	}
	if got := c.Get("https://o1.example"); got != "" {
		t.Errorf("o1 still present (%q); want it evicted as the oldest", got)
	}
	for _, o := range []string{"https://o0.example", "https://o2.example", "https://o3.example"} {
		if c.Get(o) == "" {
			t.Errorf("%s evicted; want kept", o)
		}
	}
}

func TestNonceCacheConcurrent(t *testing.T) {
	c := NewNonceCache(8)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				o := fmt.Sprintf("https://o%d.example", (g+i)%12)
				c.Put(o, fmt.Sprintf("n%d", i))
				if n := c.Get(o); n != "" && !validNonce(n) {
					t.Errorf("Get = %q: not a nonce", n)
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() > 8 {
		t.Errorf("Len() = %d; want at most 8", c.Len())
	}
}

func BenchmarkNonceCacheGet(b *testing.B) {
	c := new(NonceCache)
	o := origin{scheme: "https", host: "api.example.com"}
	c.put(o, "abcdef")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if c.get(o) == "" {
				b.Fatal("missing")
			}
		}
	})
}

// BenchmarkNonceCacheGetMutex is the reference a lock-based cache would
// cost under the same parallel load.
func BenchmarkNonceCacheGetMutex(b *testing.B) {
	var mu sync.Mutex
	m := map[origin]string{{scheme: "https", host: "api.example.com"}: "abcdef"}
	o := origin{scheme: "https", host: "api.example.com"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n := m[o]
			mu.Unlock()
			if n == "" {
				b.Fatal("missing")
			}
		}
	})
}

// FuzzValidNonce checks that every nonce validNonce admits goes into a
// proof and comes back out of the JSON unchanged, and that it admits
// exactly the NQCHAR strings of RFC 9449 §8.1.
func FuzzValidNonce(f *testing.F) {
	for _, s := range []string{"abc", `a"b`, `a\b`, "a b", "", "\x7f", "~!#[]"} {
		f.Add(s)
	}
	s := newTestSigner(f, algEdDSA)
	f.Fuzz(func(t *testing.T, nonce string) {
		want := len(nonce) > 0 && len(nonce) <= maxNonceLen
		for i := 0; i < len(nonce); i++ {
			c := nonce[i]
			if !(c == 0x21 || (0x23 <= c && c <= 0x5b) || (0x5d <= c && c <= 0x7e)) {
				want = false
			}
		}
		if got := validNonce(nonce); got != want {
			t.Fatalf("validNonce(%q) = %v; want %v", nonce, got, want)
		}
		if !want {
			return
		}
		proof, err := s.Proof("GET", "https://example.com/", &ProofOptions{Nonce: nonce})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := verifyJOSE(t, proof, algEdDSA)
		if c.Nonce != nonce {
			t.Fatalf("nonce round trip: %q; want %q", c.Nonce, nonce)
		}
	})
}
