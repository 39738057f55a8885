package tpmkey

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpopkit/dpop/dpoptest"
	"github.com/dpopkit/dpop/keystore"
)

// TestHelperProcess is not a test: it is the body of the helper processes.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	result, err := helperMain(mode)
	if err != nil {
		fmt.Println("RESULT error:", err)
		os.Exit(1)
	}
	fmt.Println("RESULT", result)
	os.Exit(0)
}

func helperMain(mode string) (string, error) {
	tpm, err := Open(os.Getenv("DPOP_TPM_SOCKET"))
	if err != nil {
		return "", err
	}
	defer tpm.Close()
	store := &keystore.FileStore{Dir: os.Getenv("DPOP_TPMKEY_DIR")}
	switch mode {
	case "reload": // load the stored key, use it against the server
		k, err := LoadKey(tpm, store, "dpop-key")
		if err != nil {
			return "", err
		}
		defer k.Close()
		c, s, err := clientFor(k, os.Getenv("DPOP_TPMKEY_SERVER"))
		if err != nil {
			return "", err
		}
		status, err := getAPI(context.Background(), c, os.Getenv("DPOP_TPMKEY_SERVER"))
		return fmt.Sprintf("%s|%d", s.Thumbprint(), status), err
	case "race": // LoadOrCreate at the same moment as another process
		if err := waitGate(os.Getenv("DPOP_TPMKEY_GATE")); err != nil {
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
	}
	return "", fmt.Errorf("unknown mode %q", mode)
}

// waitGate reports this process ready, then waits for the gate file so that
// the processes race for real.
func waitGate(gate string) error {
	if err := os.WriteFile(fmt.Sprintf("%s.ready-%d", gate, os.Getpid()), nil, 0o600); err != nil {
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, err := os.Stat(gate); err == nil {
			return nil
		}
	}
	return errors.New("gate never opened")
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

func TestTPMReloadInNewProcess(t *testing.T) {
	tpm := openTPM(t, "DPOP_TPM_SOCKET")
	dir := t.TempDir()
	k, err := LoadOrCreate(tpm, &keystore.FileStore{Dir: dir}, "dpop-key")
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	_, s, err := clientFor(k, "http://unused")
	if err != nil {
		t.Fatal(err)
	}
	k.Close()

	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	cmd, out := startHelper(t, "reload", "DPOP_TPMKEY_DIR="+dir, "DPOP_TPMKEY_SERVER="+srv.URL)
	got := waitHelper(t, cmd, out)
	if want := s.Thumbprint() + "|200"; got != want {
		t.Fatalf("new process: thumbprint|status = %q; want %q", got, want)
	}
	for _, r := range srv.Requests() {
		if r.Status == 200 && (r.Proof == nil || r.Proof.Thumbprint != s.Thumbprint()) {
			t.Errorf("request %s %s answered 200 with proof %+v; want one of key %s", r.Method, r.Path, r.Proof, s.Thumbprint())
		}
	}
}

func TestTPMLoadOrCreateTwoProcesses(t *testing.T) {
	socketEnv(t, "DPOP_TPM_SOCKET")
	dir := t.TempDir()
	gate := filepath.Join(t.TempDir(), "gate")
	const n = 2
	type proc struct {
		cmd *exec.Cmd
		out *bytes.Buffer
	}
	var procs []proc
	for range n {
		cmd, out := startHelper(t, "race", "DPOP_TPMKEY_DIR="+dir, "DPOP_TPMKEY_GATE="+gate)
		procs = append(procs, proc{cmd, out})
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		ready, _ := filepath.Glob(gate + ".ready-*")
		if len(ready) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d helpers ready after a minute", len(ready), n)
		}
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	outcomes := map[string]int{}
	for _, p := range procs {
		key, outcome, _ := strings.Cut(waitHelper(t, p.cmd, p.out), "|")
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
