package pkcs11key

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/dpopkit/dpop/dpoptest"
)

func TestPKCS11SignVerifies(t *testing.T) {
	tok := openToken(t)
	k := newKey(t, tok)
	pub, ok := k.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("Public() = %T; want a P-256 *ecdsa.PublicKey", k.Public())
	}
	for i := range 10 {
		msg := fmt.Appendf(nil, "message %d", i)
		sig, err := crypto.SignMessage(k, rand.Reader, msg, crypto.SHA256)
		if err != nil {
			t.Fatalf("SignMessage: %v", err)
		}
		d := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(pub, d[:], sig) {
			t.Fatalf("signature %x over %q does not verify", sig, msg)
		}
	}
	// The token keeps the private key in: sensitive, not extractable.
	attrs, err := tok.ctx.GetAttributes(k.s, []crypto11.AttributeType{crypto11.CkaSensitive, crypto11.CkaExtractable, crypto11.CkaPrivate})
	if err != nil {
		t.Fatalf("GetAttributes: %v", err)
	}
	for typ, want := range map[crypto11.AttributeType]byte{crypto11.CkaSensitive: 1, crypto11.CkaExtractable: 0, crypto11.CkaPrivate: 1} {
		if a := attrs[typ]; a == nil || len(a.Value) != 1 || a.Value[0] != want {
			t.Errorf("attribute %#x = %v; want %d", typ, a, want)
		}
	}
}

func TestPKCS11DPoPFlow(t *testing.T) {
	k := newKey(t, openToken(t))
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	c, s, err := clientFor(k, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if status, err := getAPI(context.Background(), c, srv.URL); err != nil || status != 200 {
			t.Fatalf("GET /api/hw = %d, %v; want 200", status, err)
		}
	}
	proofs := 0
	for _, r := range srv.Requests() {
		if r.Proof != nil {
			proofs++
			if r.Proof.Thumbprint != s.Thumbprint() {
				t.Errorf("proof of key %s; want the token's key %s", r.Proof.Thumbprint, s.Thumbprint())
			}
		}
	}
	if proofs < 4 {
		t.Errorf("server saw %d verified proofs; want at least 4 (a token and 3 calls)", proofs)
	}
}

// TestPKCS11ConcurrentRequests sends 64 requests at once through one
// Transport whose key is on the token: none may deadlock or fail.
func TestPKCS11ConcurrentRequests(t *testing.T) {
	k := newKey(t, openToken(t))
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true, NonceEvery: 16, NonceWindow: 64})
	defer srv.Close()
	c, _, err := clientFor(k, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			status, err := getAPI(ctx, c, srv.URL)
			if err == nil && status != 200 {
				err = fmt.Errorf("status %d", status)
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("request: %v", err)
		}
	}
}

func TestPKCS11FindGenerateDelete(t *testing.T) {
	tok := openToken(t)
	const label = "TestPKCS11FindGenerateDelete"
	if _, err := tok.FindKey(label); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("FindKey before GenerateKey = %v; want ErrKeyNotFound", err)
	}
	k := newKey(t, tok)
	if _, err := tok.GenerateKey(label); !errors.Is(err, ErrExist) {
		t.Errorf("second GenerateKey = %v; want ErrExist", err)
	}
	byLabel, err := tok.FindKey(label)
	if err != nil {
		t.Fatalf("FindKey: %v", err)
	}
	id, err := tok.ctx.GetAttribute(k.s, crypto11.CkaId)
	if err != nil {
		t.Fatal(err)
	}
	byID, err := tok.FindKeyByID(id.Value)
	if err != nil {
		t.Fatalf("FindKeyByID: %v", err)
	}
	for _, f := range []*Key{byLabel, byID} {
		if !f.Public().(*ecdsa.PublicKey).Equal(k.Public()) {
			t.Error("found another key than the generated one")
		}
	}
	if err := tok.DeleteKey(label); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	if _, err := tok.FindKey(label); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("FindKey after DeleteKey = %v; want ErrKeyNotFound", err)
	}
}

// TestPKCS11Absent: a missing module, a missing token and a wrong PIN are
// clear errors, returned at once.
func TestPKCS11Absent(t *testing.T) {
	cfg := testConfig(t)
	tests := []struct {
		name    string
		edit    func(*Config)
		noToken bool
		want    string
	}{
		{"no module", func(c *Config) { c.Module = filepath.Join(t.TempDir(), "libnone.so") }, true, "module"},
		{"no token", func(c *Config) { c.TokenLabel = "no-such-token" }, true, "no such token"},
		{"wrong PIN", func(c *Config) { c.PIN = "0000" }, false, "PIN was refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *cfg
			tt.edit(&c)
			tok, err := Open(&c)
			if err == nil {
				tok.Close()
				t.Fatal("Open = nil error; want an error")
			}
			if errors.Is(err, ErrNoToken) != tt.noToken || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open = %v; want ErrNoToken=%v and %q in the message", err, tt.noToken, tt.want)
			}
			if strings.Contains(err.Error(), c.PIN) && c.PIN != "" {
				t.Errorf("error %q shows the PIN", err)
			}
		})
	}
}

func TestConfigHidesPIN(t *testing.T) {
	c := Config{Module: "/m.so", TokenLabel: "t", PIN: "s3cret-pin"}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{c, &c} {
			if got := fmt.Sprintf(format, v); strings.Contains(got, c.PIN) {
				t.Errorf("Sprintf(%q, %T) = %q; shows the PIN", format, v, got)
			}
		}
	}
}

// TestPKCS11DuplicateLabel: a label that names two keys (as when two
// processes generated at once) is refused, not resolved by token order.
func TestPKCS11DuplicateLabel(t *testing.T) {
	tok := openToken(t)
	label := t.Name()
	for range 2 {
		id := make([]byte, 16)
		rand.Read(id)
		if _, err := tok.ctx.GenerateECDSAKeyPairWithLabel(id, []byte(label), elliptic.P256()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		keys, _ := tok.ctx.FindKeyPairs(nil, []byte(label))
		for _, k := range keys {
			k.Delete()
		}
	})
	if k, err := tok.FindKey(label); err == nil || errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), "2 keys") {
		t.Errorf("FindKey(a label of two keys) = %v, %v; want an error saying 2 keys", k, err)
	}
}
