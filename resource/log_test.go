package resource

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestLogTrace(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := newSetup(t, "ES256", func(c *Config) { c.Trace = NewLogTrace(l) })

	p := s.validProof(t)
	s.v.Check(s.request(p))
	s.v.Check(s.request(p)) // replay
	c := claims(s.token)
	c["htm"] = "G\"E\nT\x00" + strings.Repeat("é", 100) // a hostile htm, escaped and cut
	bad := s.key.proof(t, s.key.header(), c)
	s.v.Check(s.request(bad))
	s.v.Check(s.request("")) // no proof
	s.store.MaxEntries = 1
	s.v.Check(s.request(s.validProof(t))) // store full: 503

	type entry struct {
		Level, Msg, Reason, Detail, Error string
		Status                            int
	}
	var got []entry
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var e entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		got = append(got, e)
		if strings.Contains(line, s.token) || strings.Contains(line, p[:30]) || strings.Contains(line, bad[:30]) {
			t.Errorf("log line holds the token or a proof: %s", line)
		}
	}
	want := []struct {
		level, msg string
		reason     Reason
	}{
		{"DEBUG", "dpop: proof iat offset", ""},
		{"DEBUG", "dpop: request verified", ""},
		{"DEBUG", "dpop: proof iat offset", ""},
		{"WARN", "dpop: request refused", ReasonReplay},
		{"WARN", "dpop: request refused", ReasonHTM},
		{"INFO", "dpop: request refused", ReasonMissingProof},
		{"DEBUG", "dpop: proof iat offset", ""},
		{"ERROR", "dpop: request refused", ReasonStoreUnavailable},
	}
	if len(got) != len(want) {
		t.Fatalf("%d log lines; want %d:\n%s", len(got), len(want), buf.String())
	}
	for i, w := range want {
		if got[i].Level != w.level || got[i].Msg != w.msg || got[i].Reason != string(w.reason) {
			t.Errorf("line %d = %+v; want %s %q %s", i, got[i], w.level, w.msg, w.reason)
		}
	}
	htm := got[4].Detail
	if !strings.Contains(htm, `G\"E\nT\x00`) || !strings.Contains(htm, "…") || len(htm) > 300 {
		t.Errorf("hostile htm logged as %q; want it escaped and cut", htm)
	}
}

func TestRefusalLevels(t *testing.T) {
	for _, r := range allReasons {
		l := refusalLevel(r, ErrorInvalidProof)
		if l < slog.LevelDebug || l > slog.LevelError {
			t.Errorf("%s: level %v", r, l)
		}
	}
	if refusalLevel(ReasonIAT, ErrorUseNonce) != slog.LevelDebug {
		t.Error("a nonce challenge for iat is not logged at debug")
	}
}
