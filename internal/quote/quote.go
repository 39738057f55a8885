// Package quote makes untrusted text safe for error messages and logs.
package quote

import (
	"strconv"
	"unicode/utf8"
)

// Cut returns s quoted for error text, cut to max bytes (marked with "…")
// without splitting a rune, and with every byte outside printable ASCII
// escaped, so that no control or bidirectional character from a server, a
// client or a stored entry reaches a log, and a long one cannot flood it.
func Cut(s string, max int) string {
	cut := len(s) > max
	if cut {
		s = s[:max]
		for i := 0; i < utf8.UTFMax-1 && !utf8.ValidString(s); i++ {
			s = s[:len(s)-1] // do not split a rune
		}
	}
	q := strconv.QuoteToASCII(s)
	if cut {
		q += "…"
	}
	return q
}
