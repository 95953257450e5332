package protocol

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Text hygiene (protocol 1.1): chat text, report reasons and interests are
// shown to another person, so what reaches them is normalised to NFC and
// stripped of control characters and of the bidirectional controls that can
// make a message read differently from what it contains (U+202E turning
// "exe.txt" around, an embedding that swallows the rest of a line). This
// happens before trimming, the emptiness check and the length checks, so a
// text of controls only is an empty text, and limits count what is relayed.

// cleanChat is hygiene for chat.text: newline and tab are kept, because a
// chat message may have several lines.
func cleanChat(s string) string { return clean(s, true) }

// cleanLine is hygiene for one-line fields: report reasons and interests.
func cleanLine(s string) string { return clean(s, false) }

func clean(s string, keepLines bool) string {
	if isCleanASCII(s, keepLines) {
		return s // the common case: nothing to remove, ASCII is already NFC
	}
	if strings.IndexFunc(s, func(r rune) bool { return dropped(r, keepLines) }) >= 0 {
		s = strings.Map(func(r rune) rune {
			if dropped(r, keepLines) {
				return -1
			}
			return r
		}, s)
	}
	// Removing comes first: a control between a letter and a combining mark
	// would otherwise keep them apart during composition and leave the
	// result not in NFC.
	return norm.NFC.String(s)
}

// dropped reports whether hygiene removes r: a control character (Unicode
// category Cc: C0, DEL and C1) or a bidirectional embedding, override or
// isolate (U+202A–U+202E, U+2066–U+2069).
func dropped(r rune, keepLines bool) bool {
	switch {
	case keepLines && (r == '\n' || r == '\t'):
		return false
	case unicode.IsControl(r):
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

func isCleanASCII(s string, keepLines bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			return false
		case c >= 0x20 && c != 0x7f:
		case keepLines && (c == '\n' || c == '\t'):
		default:
			return false
		}
	}
	return true
}
