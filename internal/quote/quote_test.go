package quote

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCut(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 10, `"plain"`},
		{"a\x1b[2Jb", 10, `"a\x1b[2Jb"`},
		{"\u202eevil", 10, `"\u202eevil"`},
		{"line\nbreak", 20, `"line\nbreak"`},
		{"abcdef", 3, `"abc"…`},
		{"ab\u00e9", 3, `"ab"…`}, // é's two bytes are not split
	}
	for _, tt := range tests {
		if got := Cut(tt.in, tt.max); got != tt.want {
			t.Errorf("Cut(%q, %d) = %s; want %s", tt.in, tt.max, got, tt.want)
		}
	}
	long := Cut(strings.Repeat("\u00e9", 1000), 255)
	if !utf8.ValidString(long) || len(long) > 255*6+8 {
		t.Errorf("Cut of a long string: %d bytes", len(long))
	}
}
