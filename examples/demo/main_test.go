package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestRunText(t *testing.T) {
	var buf bytes.Buffer
	if err := run(context.Background(), &buf, options{}); err != nil {
		t.Fatalf("run: %v\n%s", err, buf.String())
	}
	out := buf.String()
	for _, want := range []string{
		"client credentials",
		"logs in with an authorization code + PKCE",
		"use_dpop_nonce → retrying once with the server's nonce",
		"Refresh:",
		"stolen token refused with another key: 401 invalid_token",
		"stolen token refused as a Bearer token: 401 invalid_token",
		"replayed proof refused: 401 invalid_dpop_proof",
		"All 7 steps behaved as shown",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not mention %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("output has ANSI escapes without options.color")
	}
}

func TestRunJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := run(context.Background(), &buf, options{json: true}); err != nil {
		t.Fatalf("run: %v\n%s", err, buf.String())
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	var (
		steps, retries int
		last           map[string]any
	)
	for i, line := range lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
		switch ev["event"] {
		case "step":
			steps++
		case "request":
			if r, _ := ev["retry_reason"].(string); r != "" {
				retries++
			}
		case "info", "check", "result":
		default:
			t.Errorf("line %d: event = %v; want step, request, info, check or result", i+1, ev["event"])
		}
		last = ev
	}
	if steps != 7 {
		t.Errorf("step events = %d; want 7", steps)
	}
	if retries == 0 {
		t.Errorf("no request event has a retry_reason")
	}
	if last["event"] != "result" || last["ok"] != true {
		t.Errorf("last event = %v; want a result with ok true", last)
	}
}

// TestRunFailsWhenAttackerHasKey proves that the checks can fail: an
// attacker holding the client's key can use the stolen token, so the step
// that shows it refused must fail, and run must say which step it was.
func TestRunFailsWhenAttackerHasKey(t *testing.T) {
	var buf bytes.Buffer
	err := run(context.Background(), &buf, options{json: true, attackerHasKey: true})
	if err == nil {
		t.Fatalf("run succeeded; want an error from step 6\n%s", buf.String())
	}
	if got, want := err.Error(), "demo: step 6 (stolen token): "; !strings.HasPrefix(got, want) {
		t.Errorf("error = %q; want prefix %q", got, want)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	var last struct {
		Event      string `json:"event"`
		OK         bool   `json:"ok"`
		FailedStep int    `json:"failed_step"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if last.Event != "result" || last.OK || last.FailedStep != 6 {
		t.Errorf("last event = %+v; want a result with ok false, failed_step 6", last)
	}
}

func TestColorOutputHonoursNoColor(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	if colorOutput() {
		t.Errorf("colorOutput() = true with NO_COLOR set; want false")
	}
}

func TestShort(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"abcdefghijkl", "abcdefghijkl"},
		{"abcdefghijklm", "abcdef…jklm"},
	} {
		if got := short(tt.in); got != tt.want {
			t.Errorf("short(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
