package protocol

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Text hygiene as the client sees it: through Decode for chat and report,
// through NormalizeInterests for interests. Each input is written as a JSON
// escape so the table shows exactly which code point is sent.
func TestTextHygieneChat(t *testing.T) {
	tests := []struct {
		name, text string // JSON string content
		want       string // "" = refused as empty
	}{
		{"NUL removed", `a\u0000b`, "ab"},
		{"ESC sequence loses its ESC", `\u001b[31mred`, "[31mred"},
		{"DEL and C1 removed", `a\u007fb\u0080c\u009bd`, "abcd"},
		{"carriage return removed", `a\r\nb`, "a\nb"},
		{"newline and tab kept inside", `a\nb\tc`, "a\nb\tc"},
		{"right-to-left override removed", `invoice\u202efdp.exe`, "invoicefdp.exe"},
		{"every embedding, override and isolate removed", `\u202a1\u202b2\u202c3\u202d4\u202e5\u20666\u20677\u20688\u20699`, "123456789"},
		{"bidi marks are not controls and stay", `a\u200eb\u200fc`, "a\u200eb\u200fc"},
		{"combining sequence composed", `e\u0301`, "é"},
		{"Hangul jamo composed", `\u1100\u1161`, "\uac00"},
		{"control between letter and mark removed before composing", `e\u0000\u0301`, "é"},
		{"already NFC unchanged", `é 日本 🙂`, "é 日本 🙂"},
		{"white space exposed by removal is trimmed", `\u0000 hi \u202e`, "hi"},
		{"all controls is empty", `\u0000\u0001\u001b\u007f`, ""},
		{"all bidi controls is empty", `\u202e\u2066\u2069`, ""},
		{"controls and white space is empty", `\u0000 \u202e \n`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := decodeString(`{"type":"chat","text":"` + tc.text + `"}`)
			if tc.want == "" {
				if err == nil || err.Code != CodeBadMessage {
					t.Fatalf("Decode = %v (text %q), want bad_message for empty text", err, f.Text)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if f.Text != tc.want {
				t.Fatalf("text %q, want %q", f.Text, tc.want)
			}
		})
	}
}

func TestTextHygieneReason(t *testing.T) {
	tests := []struct{ name, reason, want string }{
		{"NUL and ESC removed", `spam\u0000\u001b!`, "spam!"},
		{"newline and tab removed", `line1\nline2\tx`, "line1line2x"},
		{"bidi override removed", `\u202eenon`, "enon"},
		{"NFC", `caf\u0065\u0301`, "café"},
		{"only controls is no reason", `\u0000\u202e`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := decodeString(`{"type":"report","reason":"` + tc.reason + `"}`)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if f.Reason != tc.want {
				t.Fatalf("reason %q, want %q", f.Reason, tc.want)
			}
		})
	}
}

func TestTextHygieneInterests(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"controls removed", []string{"go\u0000lang", "\u001bjazz"}, []string{"golang", "jazz"}},
		{"newline and tab removed, not kept as in chat", []string{"hip\nhop", "a\tb"}, []string{"hiphop", "ab"}},
		{"bidi controls removed", []string{"\u202erock\u202c", "\u2066pop\u2069"}, []string{"rock", "pop"}},
		{"NFC makes spellings one interest", []string{"cafe\u0301", "café", "CAFE\u0301"}, []string{"café"}},
		{"only controls is empty and dropped", []string{"\u0000\u202e", "x"}, []string{"x"}},
		{"length counted after hygiene", []string{strings.Repeat("a\u0000", 32)}, []string{strings.Repeat("a", 32)}},
		{"length counted after composing", []string{strings.Repeat("e\u0301", 32)}, []string{strings.Repeat("é", 32)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := NormalizeInterests(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("NormalizeInterests(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// The limits count code points after hygiene: 1000 letters padded with
// controls and split into letter + combining mark are within the limit.
func TestLimitsAfterHygiene(t *testing.T) {
	text := strings.Repeat(`e\u0301\u0000`, MaxChatRunes)
	f, err := decodeString(`{"type":"chat","text":"` + text + `"}`)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if n := utf8.RuneCountInString(f.Text); n != MaxChatRunes {
		t.Fatalf("%d code points after hygiene, want %d", n, MaxChatRunes)
	}
	if e := CheckLimits(&f); e != nil {
		t.Fatalf("CheckLimits = %v, want nil", e)
	}
	reason := strings.Repeat(`\u202e`, 600) + strings.Repeat("x", MaxReasonRunes)
	if f, err = decodeString(`{"type":"report","reason":"` + reason + `"}`); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if e := CheckLimits(&f); e != nil {
		t.Fatalf("reason: CheckLimits = %v, want nil", e)
	}
}

// checkHygienic is what the fuzzer asserts of every accepted text field.
func checkHygienic(t *testing.T, field, s string, keepLines bool) {
	t.Helper()
	if !norm.NFC.IsNormalString(s) {
		t.Fatalf("%s %q is not NFC", field, s)
	}
	for _, r := range s {
		if dropped(r, keepLines) {
			t.Fatalf("%s %q still holds %U", field, s, r)
		}
	}
}
