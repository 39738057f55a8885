package pkcs11key

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"golang.org/x/oauth2/clientcredentials"
)

// runWith is the command that runs the PKCS #11 tests; they skip without it.
const runWith = "run them with scripts/with-softhsm.sh bash -c 'cd pkcs11key && go test ./...' (it sets up softhsm2)"

// testConfig returns the softhsm2 token's configuration from the
// environment, skipping the test when it is unset, or failing it under
// DPOP_FULL_TEST=1.
func testConfig(t testing.TB) *Config {
	t.Helper()
	if os.Getenv("DPOP_PKCS11_MODULE") == "" {
		if os.Getenv("DPOP_FULL_TEST") == "1" {
			t.Fatalf("DPOP_FULL_TEST=1 but DPOP_PKCS11_MODULE is unset: %s", runWith)
		}
		t.Skipf("no PKCS #11 token (DPOP_PKCS11_MODULE unset): %s", runWith)
	}
	return envConfig()
}

func envConfig() *Config {
	return &Config{
		Module:     os.Getenv("DPOP_PKCS11_MODULE"),
		TokenLabel: os.Getenv("DPOP_PKCS11_TOKEN"),
		PIN:        os.Getenv("DPOP_PKCS11_PIN"),
	}
}

// openToken opens the test token, closed at the test's end.
func openToken(t testing.TB) *Token {
	t.Helper()
	tok, err := Open(testConfig(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { tok.Close() })
	return tok
}

// newKey generates a key labelled after the test, deleted at its end.
func newKey(t testing.TB, tok *Token) *Key {
	t.Helper()
	label := strings.ReplaceAll(t.Name(), "/", "-")
	k, err := tok.GenerateKey(label)
	if err != nil {
		t.Fatalf("GenerateKey(%q): %v", label, err)
	}
	t.Cleanup(func() { tok.DeleteKey(label) })
	return k
}

// clientFor returns an HTTP client whose requests carry DPoP-bound tokens
// from the dpoptest server at base, with proofs signed by key.
func clientFor(key *Key, base string) (*http.Client, *dpop.Signer, error) {
	s, err := dpop.NewSigner(key, nil)
	if err != nil {
		return nil, nil, err
	}
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: "backend", ClientSecret: "backend-secret", TokenURL: base + "/token"}, // dpoptest's token endpoint
		Signer: s,
	}
	return cc.Client(context.Background()), s, nil
}

// getAPI makes one request to the resource server at base and returns its
// status.
func getAPI(ctx context.Context, c *http.Client, base string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/hw", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// The helper process is this test binary re-executed with
// -test.run=^TestHelperProcess$ and DPOP_PKCS11KEY_HELPER set to a mode; it
// reports one line "RESULT <value>".
const helperEnv = "DPOP_PKCS11KEY_HELPER"

func startHelper(t *testing.T, mode string, env ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), append(env, helperEnv+"="+mode)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// waitHelper waits for a helper, at most a minute, and returns its RESULT.
func waitHelper(t *testing.T, cmd *exec.Cmd, out *bytes.Buffer) string {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("helper: %v; output:\n%s", err, out)
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("helper did not finish within a minute; output:\n%s", out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
			return v
		}
	}
	t.Fatalf("helper printed no RESULT line:\n%s", out)
	return ""
}
