package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpopkit/dpop/dpoptest"
	"github.com/dpopkit/dpop/keystore"
)

func TestParseArgsTPM(t *testing.T) {
	base := []string{"-issuer", "https://as.example", "-client-id", "cli"}
	tests := []struct {
		args    []string
		wantErr string
		backend string
	}{
		{[]string{"-store", "tpm"}, "", "keychain"},
		{[]string{"-store", "tpm", "-tpm-store", "file"}, "", "file"},
		{[]string{"-store", "tpm", "-tpm-store", "tpm"}, "-tpm-store", ""},
		{[]string{"-store", "hsm"}, "want keychain, file or tpm", ""},
	}
	for _, tt := range tests {
		o, err := parseArgs(append(tt.args, base...), func(string) string { return "" }, io.Discard)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("parseArgs(%q) = %v; want an error mentioning %q", tt.args, err, tt.wantErr)
		case tt.wantErr == "" && err != nil:
			t.Errorf("parseArgs(%q) = %v", tt.args, err)
		case tt.wantErr == "" && o.backend() != tt.backend:
			t.Errorf("parseArgs(%q).backend() = %q; want %q", tt.args, o.backend(), tt.backend)
		}
	}
}

// TestRunNoTPM: without a TPM, -store tpm says so and what to use instead,
// and stores nothing.
func TestRunNoTPM(t *testing.T) {
	srv := dpoptest.NewServer(nil)
	defer srv.Close()
	dir := t.TempDir()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-store", "tpm", "-tpm-store", "file", "-dir", dir, "-tpm", filepath.Join(dir, "no-tpm"),
		"-issuer", srv.URL, "-client-id", "cli", "-timeout", "30s"}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no TPM available") || !strings.Contains(err.Error(), "-store file") {
		t.Fatalf("run = %v; want an error saying no TPM is available and -store file", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "dpop-*")); len(m) != 0 {
		t.Errorf("entries %q were stored; want none", m)
	}
}

// TestTPMRunWithTestServer logs in with the key in swtpm and its blob in a
// file store, runs again without a login, and logs out.
func TestTPMRunWithTestServer(t *testing.T) {
	sock := os.Getenv("DPOP_TPM_SOCKET")
	if sock == "" {
		if os.Getenv("DPOP_FULL_TEST") == "1" {
			t.Fatal("DPOP_FULL_TEST=1 but DPOP_TPM_SOCKET is unset: run under scripts/with-swtpm.sh")
		}
		t.Skip("no software TPM (DPOP_TPM_SOCKET unset): run scripts/with-swtpm.sh bash -c 'cd examples/cli-login && go test ./...'")
	}
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	opened := fakeBrowser(t)
	dir := t.TempDir()
	args := []string{"-store", "tpm", "-tpm-store", "file", "-dir", dir, "-tpm", sock,
		"-issuer", srv.URL, "-client-id", "cli", "-api", srv.URL + "/api/me", "-timeout", "30s"}
	ctx := context.Background()
	for i := range 2 {
		var stdout, stderr bytes.Buffer
		if err := run(ctx, args, &stdout, &stderr); err != nil {
			t.Fatalf("run %d: %v\n%s", i+1, err, stderr.String())
		}
		if !strings.HasPrefix(stdout.String(), "200 OK\n") {
			t.Errorf("run %d: stdout = %q; want 200 OK", i+1, stdout.String())
		}
	}
	if len(opened()) != 1 {
		t.Errorf("browser opened %d times in two runs; want 1", len(opened()))
	}
	keyName, _ := entryNames(srv.URL, "cli")
	blob, err := (&keystore.FileStore{Dir: dir}).Get(keyName)
	if err != nil || !bytes.HasPrefix(blob, []byte("-----BEGIN TSS2 PRIVATE KEY-----")) {
		t.Errorf("stored key = %.40q, %v; want a TPM 2.0 key file", blob, err)
	}
	if _, err := keystore.LoadKey(&keystore.FileStore{Dir: dir}, keyName); err == nil {
		t.Error("the stored key parses as a software key; want only a TPM blob")
	}
	if err := run(ctx, append(args, "logout"), io.Discard, io.Discard); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "dpop-*")); len(m) != 0 {
		t.Errorf("after logout: %q remain", m)
	}
}
