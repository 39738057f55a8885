package keystore

import (
	"bufio"
	"bytes"
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
)

// The helper process is this test binary re-executed with
// -test.run=TestHelperProcess and DPOP_KEYSTORE_HELPER set; it reports on
// stdout in lines "RESULT <value>".
const helperEnv = "DPOP_KEYSTORE_HELPER"

// TestHelperProcess is not a test: it is the body of the helper processes.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	// Report ready, then wait at the start line so that the processes
	// race for real.
	if gate := os.Getenv("DPOP_KEYSTORE_GATE"); gate != "" {
		if err := os.WriteFile(fmt.Sprintf("%s.ready-%d", gate, os.Getpid()), nil, 0o600); err != nil {
			fmt.Println("RESULT error:", err)
			os.Exit(1)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
			if _, err := os.Stat(gate); err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Println("RESULT gate never opened")
				os.Exit(1)
			}
		}
	}
	switch mode {
	case "loadorcreate":
		s := &createWatch{Store: helperStore(), outcome: "loaded"}
		key, err := LoadOrCreate(s, os.Getenv("DPOP_KEYSTORE_NAME"), nil)
		if err != nil {
			fmt.Println("RESULT error:", err)
			os.Exit(1)
		}
		pub, err := x509.MarshalPKIXPublicKey(key.Public())
		if err != nil {
			fmt.Println("RESULT error:", err)
			os.Exit(1)
		}
		fmt.Println("RESULT", base64.StdEncoding.EncodeToString(pub)+"|"+s.outcome)
	case "keychain-get":
		k := &Keychain{Service: "dpop-keystore-absent", Timeout: 2 * time.Second}
		start := time.Now()
		_, err := k.Get("e")
		fmt.Printf("RESULT %v|%v|%v\n", time.Since(start).Milliseconds(), errors.Is(err, ErrKeychainUnavailable), err)
	default:
		fmt.Println("RESULT unknown mode", mode)
		os.Exit(1)
	}
	os.Exit(0)
}

// createWatch records what LoadOrCreate's Create did: "created", or "lost"
// the race (ErrExist); "loaded" if it was not called.
type createWatch struct {
	Store
	outcome string
}

func (w *createWatch) Create(name string, data []byte) error {
	err := w.Store.Create(name, data)
	w.outcome = "created"
	if errors.Is(err, ErrExist) {
		w.outcome = "lost"
	}
	return err
}

// helperStore builds the store that DPOP_KEYSTORE_STORE names:
// "file:DIR" or "keychain:SERVICE".
func helperStore() Store {
	kind, arg, _ := strings.Cut(os.Getenv("DPOP_KEYSTORE_STORE"), ":")
	if kind == "keychain" {
		return &Keychain{Service: arg, Timeout: 20 * time.Second}
	}
	return &FileStore{Dir: arg}
}

// startHelper starts a helper process with env added; it must be waited for.
func startHelper(t *testing.T, env ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// helperResult returns the RESULT line of a finished helper's output.
func helperResult(out *bytes.Buffer) string {
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
			return v
		}
	}
	return ""
}

// raceLoadOrCreate starts n processes that LoadOrCreate one name in the
// store described by storeSpec at the same moment, and checks that all
// return the same key. It does so for several rounds, each with a new name.
func raceLoadOrCreate(t *testing.T, storeSpec string, n, rounds int) {
	t.Helper()
	for round := range rounds {
		name := fmt.Sprintf("race-%d", round)
		gate := filepath.Join(t.TempDir(), "go")
		var cmds []*exec.Cmd
		var outs []*bytes.Buffer
		for range n {
			cmd, out := startHelper(t,
				helperEnv+"=loadorcreate",
				"DPOP_KEYSTORE_STORE="+storeSpec,
				"DPOP_KEYSTORE_NAME="+name,
				"DPOP_KEYSTORE_GATE="+gate)
			cmds = append(cmds, cmd)
			outs = append(outs, out)
		}
		// Open the gate when all are ready.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
			ready, _ := filepath.Glob(gate + ".ready-*")
			if len(ready) == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d of %d helpers ready", round, len(ready), n)
			}
		}
		if err := os.WriteFile(gate, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		var keys []string
		outcomes := map[string]int{}
		for i, cmd := range cmds {
			err := cmd.Wait()
			res := helperResult(outs[i])
			if err != nil || res == "" || strings.HasPrefix(res, "error") {
				t.Fatalf("round %d: helper %d: %v\n%s", round, i, err, outs[i])
			}
			key, outcome, _ := strings.Cut(res, "|")
			keys = append(keys, key)
			outcomes[outcome]++
		}
		if outcomes["created"] != 1 {
			t.Errorf("round %d: outcomes %v; want exactly one process to create the key", round, outcomes)
		}
		t.Logf("round %d: %v", round, outcomes)
		for i, k := range keys {
			if k != keys[0] {
				t.Errorf("round %d: process %d got key %.24s…; process 0 got %.24s…", round, i, k, keys[0])
			}
		}
	}
}
