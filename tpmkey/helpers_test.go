package tpmkey

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/dpopkit/dpop/internal/hwkeytest"
	"github.com/dpopkit/dpop/keystore"
	"github.com/google/go-tpm/tpm2"
)

// runWith is the command that runs the TPM tests; they skip without it.
const runWith = "run them with scripts/with-swtpm.sh bash -c 'cd tpmkey && go test ./...' (it starts swtpm)"

// openTPM opens the TPM whose socket env names, closed at the test's end.
// Without one the test skips, or fails under DPOP_FULL_TEST=1.
func openTPM(t testing.TB, env string) *TPM {
	t.Helper()
	tpm, err := Open(hwkeytest.Need(t, env, runWith))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { tpm.Close() })
	return tpm
}

// mustGenerate makes a key in tpm, flushed at the test's end.
func mustGenerate(t testing.TB, tpm *TPM) *Key {
	t.Helper()
	k, err := GenerateKey(tpm)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// tamperedTPM returns the TPM at DPOP_TPM_SOCKET behind a connection that
// lets edit rewrite each successful response in place (cc is the command's
// code): a stand-in for a fake device, or something on the bus, that
// answers with what was not asked for.
func tamperedTPM(t *testing.T, edit func(cc tpm2.TPMCC, rsp []byte)) *TPM {
	t.Helper()
	path := hwkeytest.Need(t, "DPOP_TPM_SOCKET", runWith)
	tpm := newTPM(&tamperConn{next: &socketConn{path: path}, edit: edit}, path)
	t.Cleanup(func() { tpm.Close() })
	return tpm
}

type tamperConn struct {
	next *socketConn
	edit func(cc tpm2.TPMCC, rsp []byte)
}

func (c *tamperConn) Send(cmd []byte) ([]byte, error) {
	rsp, err := c.next.Send(cmd)
	if err == nil && len(rsp) >= headerSize && binary.BigEndian.Uint32(rsp[6:10]) == 0 {
		c.edit(tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10])), rsp)
	}
	return rsp, err
}

func (c *tamperConn) Close() error { return nil }

// TestHelperProcess is not a test: it is the body of the helper processes
// (hwkeytest.Start), which open the TPM at DPOP_TPM_SOCKET and the file
// store at DPOP_TPMKEY_DIR.
func TestHelperProcess(t *testing.T) {
	hwkeytest.HelperProcess(hwkeytest.Modes{
		// Load the stored key and use it against the test's server.
		"reload": func() (string, error) {
			return withStore(func(tpm *TPM, store keystore.Store) (string, error) {
				k, err := LoadKey(tpm, store, "dpop-key")
				if err != nil {
					return "", err
				}
				defer k.Close()
				return hwkeytest.Use(k)
			})
		},
		// LoadOrCreate at the same moment as other processes; report the
		// key and what Create did.
		"race": func() (string, error) {
			return withStore(func(tpm *TPM, store keystore.Store) (string, error) {
				if err := hwkeytest.WaitGate(); err != nil {
					return "", err
				}
				w := &createWatch{Store: store, outcome: "loaded"}
				k, err := LoadOrCreate(tpm, w, "dpop-key")
				if err != nil {
					return "", err
				}
				defer k.Close()
				pub, err := x509.MarshalPKIXPublicKey(k.Public())
				return base64.StdEncoding.EncodeToString(pub) + "|" + w.outcome, err
			})
		},
	})
}

func withStore(f func(*TPM, keystore.Store) (string, error)) (string, error) {
	tpm, err := Open(os.Getenv("DPOP_TPM_SOCKET"))
	if err != nil {
		return "", err
	}
	defer tpm.Close()
	return f(tpm, &keystore.FileStore{Dir: os.Getenv("DPOP_TPMKEY_DIR")})
}

// createWatch records what LoadOrCreate's Create did: "created", or "lost"
// the race (ErrExist); "loaded" if it was not called.
type createWatch struct {
	keystore.Store
	outcome string
}

func (w *createWatch) Create(name string, data []byte) error {
	err := w.Store.Create(name, data)
	w.outcome = "created"
	if errors.Is(err, keystore.ErrExist) {
		w.outcome = "lost"
	}
	return err
}
