package pkcs11key

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/dpopkit/dpop/dpoptest"
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
	tok, err := Open(envConfig())
	if err != nil {
		return "", err
	}
	defer tok.Close()
	label := os.Getenv("DPOP_PKCS11KEY_LABEL")
	switch mode {
	case "reload": // find the key on the token, use it against the server
		k, err := tok.FindKey(label)
		if err != nil {
			return "", err
		}
		c, s, err := clientFor(k, os.Getenv("DPOP_PKCS11KEY_SERVER"))
		if err != nil {
			return "", err
		}
		status, err := getAPI(context.Background(), c, os.Getenv("DPOP_PKCS11KEY_SERVER"))
		return fmt.Sprintf("%s|%d", s.Thumbprint(), status), err
	}
	return "", fmt.Errorf("unknown mode %q", mode)
}

func TestPKCS11ReloadInNewProcess(t *testing.T) {
	tok := openToken(t)
	k := newKey(t, tok)
	_, s, err := clientFor(k, "http://unused")
	if err != nil {
		t.Fatal(err)
	}
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	cmd, out := startHelper(t, "reload", "DPOP_PKCS11KEY_LABEL="+t.Name(), "DPOP_PKCS11KEY_SERVER="+srv.URL)
	if got, want := waitHelper(t, cmd, out), s.Thumbprint()+"|200"; got != want {
		t.Fatalf("new process: thumbprint|status = %q; want %q", got, want)
	}
}
