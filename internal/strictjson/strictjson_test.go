package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseObject(t *testing.T) {
	ms, err := ParseObject(nil, []byte(` { "a" : 1, "b\u0063": [true, false, null, {"x": -1.5e+3}], "c": "s\"\u00e9" , "d":{} } `))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ name, value string }{
		{"a", "1"}, {"bc", `[true, false, null, {"x": -1.5e+3}]`}, {"c", `"s\"\u00e9"`}, {"d", "{}"},
	}
	if len(ms) != len(want) {
		t.Fatalf("got %d members; want %d", len(ms), len(want))
	}
	for i, w := range want {
		if string(ms[i].Name) != w.name || string(ms[i].Value) != w.value {
			t.Errorf("member %d = %q: %q; want %q: %q", i, ms[i].Name, ms[i].Value, w.name, w.value)
		}
	}
}

func TestParseObjectRefuses(t *testing.T) {
	deep := strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1)
	deepArr := `{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + "}"
	var many, wide strings.Builder
	many.WriteString(`{"a":[`)
	for i := range MaxMembers + 1 {
		if i > 0 {
			many.WriteByte(',')
		}
		many.WriteByte('0')
	}
	many.WriteString("]}")
	wide.WriteString("{")
	for i := range MaxObjectMembers + 1 {
		if i > 0 {
			wide.WriteByte(',')
		}
		wide.WriteString(`"` + strings.Repeat("x", i+1) + `":0`)
	}
	wide.WriteString("}")
	for _, doc := range []string{
		``, `[]`, `"a"`, `1`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1}x`, `{"a":1}{}`, `{'a':1}`,
		`{"a":01}`, `{"a":1.}`, `{"a":.1}`, `{"a":-}`, `{"a":1e}`, `{"a":+1}`, `{"a":tru}`, `{"a":nul}`,
		`{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"` + "\x01" + `"}`, `{"a":"unterminated}`, "\ufeff{}",
		`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"x":{"k":1,"k":2}}`, `{"x":[{"k":1,"\u006b":2}]}`,
		`{"\ud800":1,"\ufffd":2}`, "{\"\xff\":1,\"\ufffd\":2}", `{"a\/b":1,"a/b":2}`,
		deep, deepArr, many.String(), wide.String(),
	} {
		if _, err := ParseObject(nil, []byte(doc)); err == nil {
			t.Errorf("ParseObject(%.40q) = nil error; want one", doc)
		} else if !errors.As(err, new(*SyntaxError)) {
			t.Errorf("ParseObject(%.40q) = %T; want *SyntaxError", doc, err)
		}
	}
	// Just within the limits.
	ok := strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth)
	if _, err := ParseObject(nil, []byte(ok)); err != nil {
		t.Errorf("depth %d: %v", MaxDepth, err)
	}
}

// TestUnquoteMatchesEncodingJSON checks that strings decode as encoding/json
// decodes them: what one reader sees, the other sees.
func TestUnquoteMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		`""`, `"abc"`, `"\"\\\/\b\f\n\r\t"`, `"\u00e9\u00E9"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`,
		`"\ude00\ud83d"`, `"\ud83d\u0041"`, "\"\xff\xfe\"", "\"\xed\xa0\x80\"", `"é€😀"`, "\"a\xc3\"",
	} {
		checkUnquote(t, []byte(s))
	}
}

func checkUnquote(t *testing.T, s []byte) {
	t.Helper()
	var want string
	jerr := json.Unmarshal(s, &want)
	got, ok := Unquote(s)
	if ok != (jerr == nil) {
		t.Fatalf("Unquote(%q) ok = %v; encoding/json error %v", s, ok, jerr)
	}
	if ok && string(got) != want {
		t.Fatalf("Unquote(%q) = %q; encoding/json %q", s, got, want)
	}
}

func TestUnquoteNoAlloc(t *testing.T) {
	s := []byte(`"https://api.example.com/items"`)
	if n := testing.AllocsPerRun(100, func() { Unquote(s) }); n != 0 {
		t.Errorf("Unquote of a simple string: %v allocations; want 0", n)
	}
	doc := []byte(`{"jti":"abc","htm":"GET","htu":"https://x/y","iat":1700000000,"x":{"y":[1,2]}}`)
	var buf [8]Member
	if n := testing.AllocsPerRun(100, func() { ParseObject(buf[:0], doc) }); n != 0 {
		t.Errorf("ParseObject: %v allocations; want 0", n)
	}
}

// FuzzParseObject checks ParseObject against encoding/json: what it
// accepts encoding/json accepts with the same members, and what it refuses
// that encoding/json accepts has a duplicate name or passes a limit.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `{"a":{"b":[1,"x",null]},"c":"\u00e9"}`, `{"a":1,"\u0061":2}`, `{"x":"\ud800"}`,
		`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"a","y":"b"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := ParseObject(nil, data)
		var m map[string]json.RawMessage
		jerr := json.Unmarshal(data, &m)
		if err != nil {
			if jerr == nil && m != nil && !hasDuplicateOrLimit(data) {
				t.Fatalf("ParseObject(%q): %v; encoding/json accepts it", data, err)
			}
			return
		}
		if jerr != nil || m == nil {
			t.Fatalf("ParseObject(%q) accepted; encoding/json: %v", data, jerr)
		}
		if len(ms) != len(m) {
			t.Fatalf("ParseObject(%q): %d members; encoding/json %d", data, len(ms), len(m))
		}
		for _, mb := range ms {
			v, ok := m[string(mb.Name)]
			if !ok || !bytes.Equal(bytes.TrimSpace(v), mb.Value) {
				t.Fatalf("ParseObject(%q): member %q = %q; encoding/json %q", data, mb.Name, mb.Value, v)
			}
			if mb.Value[0] == '"' {
				checkUnquote(t, mb.Value)
			}
		}
	})
}

// hasDuplicateOrLimit reports whether data, valid JSON, has a duplicate
// member name in some object or passes a limit, by a reading with
// encoding/json's tokenizer.
func hasDuplicateOrLimit(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		names  map[string]bool
		object bool
		key    bool // the next string is a name
	}
	var stack []*frame
	members := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok && top != nil && top.object && top.key {
			if top.names[s] {
				return true
			}
			top.names[s] = true
			members++
			if members > MaxMembers || len(top.names) > MaxObjectMembers {
				return true
			}
			top.key = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{names: map[string]bool{}, object: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if top != nil && !top.object {
				members++
			}
		}
		if len(stack) > MaxDepth || members > MaxMembers {
			return true
		}
		if len(stack) > 0 {
			if t := stack[len(stack)-1]; t.object {
				t.key = true
			}
		}
		if tok == json.Delim('{') || tok == json.Delim('[') {
			if len(stack) > 1 && !stack[len(stack)-2].object {
				members++
			}
		}
	}
}
