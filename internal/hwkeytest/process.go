package hwkeytest

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
)

// A helper process is the test binary run again with
// -test.run=^TestHelperProcess$ and a mode in its environment. A package
// whose tests start helpers has
//
//	func TestHelperProcess(t *testing.T) { hwkeytest.HelperProcess(modes) }
//
// A helper prints one line "RESULT <value>" and exits.
const (
	helperEnv = "DPOP_HWKEYTEST_HELPER" // the mode
	serverEnv = "DPOP_HWKEYTEST_SERVER" // the dpoptest server of ReloadInNewProcess
	gateEnv   = "DPOP_HWKEYTEST_GATE"   // the gate file of Race
)

// Modes maps the mode of a helper process to what it does; what that
// returns is the helper's RESULT.
type Modes map[string]func() (string, error)

// HelperProcess is the body of TestHelperProcess: in a helper process it
// runs the helper's mode and exits; in a test run it returns at once.
func HelperProcess(modes Modes) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	run, ok := modes[mode]
	if !ok {
		run = func() (string, error) { return "", fmt.Errorf("unknown mode %q", mode) }
	}
	result, err := run()
	if err != nil {
		fmt.Println("RESULT error:", err)
		os.Exit(1)
	}
	fmt.Println("RESULT", result)
	os.Exit(0)
}

// Process is a running helper process.
type Process struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// Start starts a helper process in mode, with env added to this process's
// environment.
func Start(t *testing.T, mode string, env ...string) *Process {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{cmd: exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.count=1")}
	p.cmd.Env = append(os.Environ(), append(env, helperEnv+"="+mode)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// Wait waits for the helper, at most a minute, and returns its RESULT. A
// helper that fails, hangs or prints no RESULT fails the test.
func (p *Process) Wait(t *testing.T) string {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("helper: %v; output:\n%s", err, &p.out)
		}
	case <-time.After(time.Minute):
		p.cmd.Process.Kill()
		<-done
		t.Fatalf("helper did not finish within a minute; output:\n%s", &p.out)
	}
	sc := bufio.NewScanner(bytes.NewReader(p.out.Bytes()))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
			return v
		}
	}
	t.Fatalf("helper printed no RESULT line:\n%s", &p.out)
	return ""
}

// ReloadInNewProcess checks that a key outlives the process that made it.
// It starts a dpoptest server that demands nonces, and a helper process in
// mode "reload" with env added, which loads the key its own way and
// returns what [Use] returns. The helper's call must have been answered
// 200, and every proof the server accepted must be of s's key.
func ReloadInNewProcess(t *testing.T, s *dpop.Signer, env ...string) {
	t.Helper()
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	got := Start(t, "reload", append(env, serverEnv+"="+srv.URL)...).Wait(t)
	if want := s.Thumbprint() + "|200"; got != want {
		t.Fatalf("new process: thumbprint|status = %q; want %q", got, want)
	}
	for _, r := range srv.Requests() {
		if r.Status == 200 && (r.Proof == nil || r.Proof.Thumbprint != s.Thumbprint()) {
			t.Errorf("request %s %s answered 200 with proof %+v; want one of key %s", r.Method, r.Path, r.Proof, s.Thumbprint())
		}
	}
}

// Use is the helper side of [ReloadInNewProcess]: it obtains a token and
// calls the API of the test's server with proofs signed by key, and
// returns the key's thumbprint and the call's status.
func Use(key crypto.Signer) (string, error) {
	base := os.Getenv(serverEnv)
	if base == "" {
		return "", errors.New(serverEnv + " is unset: Use runs in a helper of ReloadInNewProcess")
	}
	c, s, err := Client(key, base)
	if err != nil {
		return "", err
	}
	status, err := Call(context.Background(), c, base)
	return fmt.Sprintf("%s|%d", s.Thumbprint(), status), err
}

// Race starts n helper processes in mode, with env added, holds them at a
// gate until all are ready (each calls [WaitGate] first), lets them go at
// once, and returns their results.
func Race(t *testing.T, n int, mode string, env ...string) []string {
	t.Helper()
	gate := filepath.Join(t.TempDir(), "gate")
	procs := make([]*Process, n)
	for i := range procs {
		procs[i] = Start(t, mode, append(env, gateEnv+"="+gate)...)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		ready, _ := filepath.Glob(gate + ".ready-*")
		if len(ready) == n {
			break
		}
		if time.Now().After(deadline) {
			for _, p := range procs {
				p.cmd.Process.Kill()
			}
			t.Fatalf("%d of %d helpers ready after a minute", len(ready), n)
		}
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	results := make([]string, n)
	for i, p := range procs {
		results[i] = p.Wait(t)
	}
	return results
}

// WaitGate is the helper side of [Race]: it reports this helper ready,
// then waits for the gate to open, so that the helpers race for real.
func WaitGate() error {
	gate := os.Getenv(gateEnv)
	if gate == "" {
		return errors.New(gateEnv + " is unset: WaitGate runs in a helper of Race")
	}
	if err := os.WriteFile(fmt.Sprintf("%s.ready-%d", gate, os.Getpid()), nil, 0o600); err != nil {
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, err := os.Stat(gate); err == nil {
			return nil
		}
	}
	return errors.New("the gate never opened")
}
