package tpmkey

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/internal/hwkeytest"
	"github.com/dpopkit/dpop/keystore"
	"github.com/google/go-tpm/tpm2"
)

func TestTPMSignVerifies(t *testing.T) {
	k := mustGenerate(t, openTPM(t, "DPOP_TPM_SOCKET"))
	pub, ok := k.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("Public() = %T %v; want a P-256 *ecdsa.PublicKey", k.Public(), k.Public())
	}
	for i := range 20 { // r or s with a leading zero byte shows up in ~1 of 128
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
	if _, err := k.Sign(rand.Reader, make([]byte, 48), crypto.SHA384); err == nil {
		t.Error("Sign(SHA-384 digest) = nil error; want an error: the key signs ES256 only")
	}
}

// TestKeyFormat: whatever the verb or the encoder, a Key shows its
// description, never its key file.
func TestKeyFormat(t *testing.T) {
	k := &Key{file: syntheticKeyFile(t, nil)}
	const want = "tpmkey.Key(P-256, in TPM)"
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%t", "%e", "%b"} {
		if got := fmt.Sprintf(verb, k); got != want {
			t.Errorf("Sprintf(%q, key) = %q; want %q", verb, got, want)
		}
	}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		slog.New(h).Info("key", "key", k)
	}
	j, _ := json.Marshal(k)
	buf.Write(j)
	if b64 := base64.StdEncoding.EncodeToString(k.file); bytes.Contains(buf.Bytes(), []byte("BEGIN")) || strings.Contains(buf.String(), b64[:16]) {
		t.Errorf("slog or encoding/json shows the key file:\n%s", &buf)
	}
}

// TestTPMDPoPFlow obtains a token and calls the API with proofs signed in
// the TPM; dpoptest verifies every proof with go-jose.
func TestTPMDPoPFlow(t *testing.T) {
	hwkeytest.Flow(t, mustGenerate(t, openTPM(t, "DPOP_TPM_SOCKET")))
}

// TestTPMConcurrentRequests sends 64 requests at once through one Transport
// whose key is in the TPM: none may deadlock or fail; signatures queue for
// the TPM one command at a time.
func TestTPMConcurrentRequests(t *testing.T) {
	hwkeytest.Concurrent(t, mustGenerate(t, openTPM(t, "DPOP_TPM_SOCKET")))
}

// TestTPMReloadInNewProcess: a key stored by one process signs in another
// (the helper's "reload"), against a server that checks its thumbprint.
func TestTPMReloadInNewProcess(t *testing.T) {
	tpm := openTPM(t, "DPOP_TPM_SOCKET")
	dir := t.TempDir()
	k, err := LoadOrCreate(tpm, &keystore.FileStore{Dir: dir}, "dpop-key")
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	s, err := dpop.NewSigner(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	k.Close()
	hwkeytest.ReloadInNewProcess(t, s, "DPOP_TPMKEY_DIR="+dir)
}

// TestTPMLoadOrCreateTwoProcesses: two processes that call LoadOrCreate at
// the same moment end with one key, created by exactly one of them.
func TestTPMLoadOrCreateTwoProcesses(t *testing.T) {
	hwkeytest.Need(t, "DPOP_TPM_SOCKET", runWith)
	keys := map[string]bool{}
	outcomes := map[string]int{}
	for _, r := range hwkeytest.Race(t, 2, "race", "DPOP_TPMKEY_DIR="+t.TempDir()) {
		key, outcome, _ := strings.Cut(r, "|")
		keys[key] = true
		outcomes[outcome]++
	}
	if len(keys) != 1 {
		t.Errorf("processes ended with %d different keys; want 1", len(keys))
	}
	if outcomes["created"] != 1 {
		t.Errorf("outcomes = %v; want exactly one created", outcomes)
	}
}

func TestTPMLoadOrCreateKeepsKey(t *testing.T) {
	tpm := openTPM(t, "DPOP_TPM_SOCKET")
	store := &keystore.MemoryStore{}
	k1, err := LoadOrCreate(tpm, store, "k")
	if err != nil {
		t.Fatalf("LoadOrCreate (create): %v", err)
	}
	defer k1.Close()
	stored, _ := store.Get("k")
	k2, err := LoadOrCreate(tpm, store, "k")
	if err != nil {
		t.Fatalf("LoadOrCreate (load): %v", err)
	}
	defer k2.Close()
	if !k1.Public().(*ecdsa.PublicKey).Equal(k2.Public()) {
		t.Error("second LoadOrCreate returned another key; want the stored one")
	}
	if again, _ := store.Get("k"); !bytes.Equal(again, stored) {
		t.Error("the stored entry changed")
	}
	if !bytes.Equal(k2.Marshal(), stored) {
		t.Error("Marshal() differs from the stored key file")
	}
}

// TestTPMForeignKey stores a key made by a second swtpm, whose seeds differ:
// this TPM must refuse it clearly, name the entry, and leave it alone.
func TestTPMForeignKey(t *testing.T) {
	tpm := openTPM(t, "DPOP_TPM_SOCKET")
	other := openTPM(t, "DPOP_TPM_SOCKET2")
	store := &keystore.FileStore{Dir: t.TempDir()}
	foreign, err := LoadOrCreate(other, store, "dpop-key")
	if err != nil {
		t.Fatalf("LoadOrCreate on the other TPM: %v", err)
	}
	foreign.Close()
	stored, _ := store.Get("dpop-key")

	for _, f := range []func() (*Key, error){
		func() (*Key, error) { return LoadKey(tpm, store, "dpop-key") },
		func() (*Key, error) { return LoadOrCreate(tpm, store, "dpop-key") },
	} {
		k, err := f()
		var fe *ForeignKeyError
		if !errors.As(err, &fe) || fe.Name != "dpop-key" {
			if k != nil {
				k.Close()
			}
			t.Fatalf("loading another TPM's key: %v; want a *ForeignKeyError naming dpop-key", err)
		}
		if !strings.Contains(err.Error(), `"dpop-key"`) || !strings.Contains(err.Error(), "another TPM") {
			t.Errorf("error = %q; want it to name the entry and say another TPM", err)
		}
	}
	if got, _ := store.Get("dpop-key"); !bytes.Equal(got, stored) {
		t.Error("the foreign entry was changed; want it left untouched")
	}
	if _, err := ParseKey(tpm, stored); !errors.As(err, new(*ForeignKeyError)) {
		t.Errorf("ParseKey(another TPM's key) = %v; want a *ForeignKeyError", err)
	}
}

func TestTPMCorruptEntry(t *testing.T) {
	tpm := openTPM(t, "DPOP_TPM_SOCKET")
	k := mustGenerate(t, tpm)
	good := k.Marshal()
	tests := []struct {
		name string
		data []byte
	}{
		{"garbage", []byte("not a key")},
		{"truncated", good[:len(good)/2]},
		{"pkcs8", []byte("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n")},
		{"trailing", append(append([]byte(nil), good...), "x"...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &keystore.MemoryStore{}
			store.Create("dpop-key", tt.data)
			k, err := LoadOrCreate(tpm, store, "dpop-key")
			var ce *keystore.CorruptError
			if !errors.As(err, &ce) || ce.Name != "dpop-key" {
				if k != nil {
					k.Close()
				}
				t.Fatalf("LoadOrCreate(corrupt) = %v; want a *keystore.CorruptError naming dpop-key", err)
			}
			if got, _ := store.Get("dpop-key"); !bytes.Equal(got, tt.data) {
				t.Error("the corrupt entry was replaced; want it left untouched")
			}
		})
	}
}

func TestTPMAbsent(t *testing.T) {
	for _, path := range []string{filepath.Join(t.TempDir(), "no-tpm"), t.TempDir()} {
		if _, err := Open(path); !errors.Is(err, ErrNoTPM) {
			t.Errorf("Open(%q) = %v; want an error matching ErrNoTPM", path, err)
		}
	}
}

// TestTPMBusy holds swtpm's only connection, as another process would, and
// expects ErrBusy after the timeout instead of a hang.
func TestTPMBusy(t *testing.T) {
	path := hwkeytest.Need(t, "DPOP_TPM_SOCKET", runWith)
	hold, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	tpm, err := Open(path)
	if err != nil {
		hold.Close()
		t.Fatal(err)
	}
	defer tpm.Close()
	tpm.Timeout = 300 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		k, err := GenerateKey(tpm)
		if k != nil {
			k.Close()
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("GenerateKey on a busy TPM still waiting after a minute")
	}
	hold.Close()
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("GenerateKey on a busy TPM = %v; want an error matching ErrBusy", err)
	}
	// Released, the TPM works again through the same connection.
	tpm.Timeout = 0
	mustGenerate(t, tpm)
	// swtpm has no resource manager: the command that timed out was queued
	// and ran once released, leaving its primary key loaded.
	flushTransients(t, tpm)
}

// flushTransients flushes every transient object of a TPM without a
// resource manager.
func flushTransients(t *testing.T, tpm *TPM) {
	t.Helper()
	caps, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: uint32(tpm2.TPMHTTransient) << 24, PropertyCount: 16}.Execute(tpm)
	if err != nil {
		t.Fatalf("GetCapability: %v", err)
	}
	handles, err := caps.CapabilityData.Data.Handles()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range handles.Handle {
		flush(tpm, h)
	}
}

// TestTPMChecksAnswers: an answer other than what was asked for is refused,
// not trusted. Each case rewrites one answer of the real TPM, as a fake
// device or an interposer on the bus could.
func TestTPMChecksAnswers(t *testing.T) {
	plain := openTPM(t, "DPOP_TPM_SOCKET")
	tests := []struct {
		name string
		cc   tpm2.TPMCC
		edit func(rsp []byte)
		sign bool // the answer is the signature's
	}{
		// Load: handle (4), parameter size (4), then the name (TPM2B).
		{"Load names another object", tpm2.TPMCCLoad, func(rsp []byte) {
			n := int(binary.BigEndian.Uint16(rsp[18:20]))
			rsp[20+n-1] ^= 1
		}, false},
		// CreatePrimary: handle, parameter size, outPublic (TPM2B), whose
		// objectAttributes follow its type and nameAlg.
		{"CreatePrimary's key is not the template", tpm2.TPMCCCreatePrimary, func(rsp []byte) {
			rsp[20+4+2] ^= 0x04 // noDA (bit 10)
		}, false},
		// Create: parameter size, outPrivate (TPM2B), outPublic (TPM2B).
		{"Create's key is not the template", tpm2.TPMCCCreate, func(rsp []byte) {
			pub := 14 + 2 + int(binary.BigEndian.Uint16(rsp[14:16]))
			rsp[pub+2+4+2] ^= 0x04 // noDA
		}, false},
		// Sign: parameter size, then sigAlg and the signature's hash.
		{"Sign with another hash", tpm2.TPMCCSign, func(rsp []byte) {
			binary.BigEndian.PutUint16(rsp[16:18], uint16(tpm2.TPMAlgSHA384))
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer flushTransients(t, plain) // what a refused answer left loaded
			tpm := tamperedTPM(t, func(cc tpm2.TPMCC, rsp []byte) {
				if cc == tt.cc {
					tt.edit(rsp)
				}
			})
			k, err := GenerateKey(tpm)
			if tt.sign && err == nil {
				defer k.Close()
				d := sha256.Sum256(nil)
				_, err = k.Sign(nil, d[:], crypto.SHA256)
			} else if err == nil {
				k.Close()
			}
			if !errors.Is(err, errMismatch) {
				t.Errorf("with the answer to command %#x rewritten: %v; want an error matching errMismatch", tt.cc, err)
			}
		})
	}
}

// TestTPMLoadChecksHandle: a TPM2_Load answered with the handle of another
// loaded key (and the right name) is refused: signatures would come from
// that key while Public reports the stored one.
func TestTPMLoadChecksHandle(t *testing.T) {
	plain := openTPM(t, "DPOP_TPM_SOCKET")
	defer flushTransients(t, plain)
	stored := mustGenerate(t, plain)
	file := stored.Marshal()
	stored.Close()
	other := mustGenerate(t, plain)
	tpm := tamperedTPM(t, func(cc tpm2.TPMCC, rsp []byte) {
		if cc == tpm2.TPMCCLoad {
			binary.BigEndian.PutUint32(rsp[10:14], uint32(other.handle.Handle))
		}
	})
	k, err := ParseKey(tpm, file)
	if err == nil {
		d := sha256.Sum256(nil)
		sig, _ := k.Sign(nil, d[:], crypto.SHA256)
		t.Fatalf("ParseKey with the answer's handle swapped = nil error (a signature of it verifies with its public key: %v); want an error matching errMismatch",
			ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d[:], sig))
	}
	if !errors.Is(err, errMismatch) {
		t.Fatalf("ParseKey with the answer's handle swapped: %v; want an error matching errMismatch", err)
	}
}

func TestTPMClosedKey(t *testing.T) {
	tpm := openTPM(t, "DPOP_TPM_SOCKET")
	k, err := GenerateKey(tpm)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := k.Close(); err != nil {
		t.Errorf("second Close = %v; want nil", err)
	}
	d := sha256.Sum256(nil)
	if _, err := k.Sign(nil, d[:], crypto.SHA256); !errors.Is(err, ErrClosed) {
		t.Errorf("Sign after Close = %v; want ErrClosed", err)
	}
	// The key file outlives the loaded key.
	k2, err := ParseKey(tpm, k.Marshal())
	if err != nil {
		t.Fatalf("ParseKey(Marshal()): %v", err)
	}
	defer k2.Close()
	if !k2.Public().(*ecdsa.PublicKey).Equal(k.Public()) {
		t.Error("ParseKey returned another key")
	}
}
