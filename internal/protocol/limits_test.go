package protocol

import (
	"strings"
	"testing"
)

// Each limit lets its maximum through and refuses one more (counted in
// bytes for signal data, in code points for text), and only for its own
// frame type.
func TestCheckLimits(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		tooLong bool
	}{
		{"signal data at the limit", `{"type":"signal","data":"` + strings.Repeat("x", MaxSignalBytes-2) + `"}`, false},
		{"signal data one byte over", `{"type":"signal","data":"` + strings.Repeat("x", MaxSignalBytes-1) + `"}`, true},
		{"chat at the limit in code points", `{"type":"chat","text":"` + strings.Repeat("é", MaxChatRunes) + `"}`, false},
		{"chat one code point over", `{"type":"chat","text":"` + strings.Repeat("é", MaxChatRunes+1) + `"}`, true},
		{"chat counted after trimming", `{"type":"chat","text":"  ` + strings.Repeat("x", MaxChatRunes) + `  "}`, false},
		{"reason at the limit", `{"type":"report","reason":"` + strings.Repeat("é", MaxReasonRunes) + `"}`, false},
		{"reason one code point over", `{"type":"report","reason":"` + strings.Repeat("é", MaxReasonRunes+1) + `"}`, true},
		{"a long join is not refused", `{"type":"join","interests":["` + strings.Repeat("x", 2000) + `"]}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, derr := decodeString(tc.in)
			if derr != nil {
				t.Fatalf("Decode: %v", derr)
			}
			err := CheckLimits(&f)
			switch {
			case tc.tooLong && (err == nil || err.Code != CodeTooLong):
				t.Fatalf("CheckLimits = %v, want too_long", err)
			case !tc.tooLong && err != nil:
				t.Fatalf("CheckLimits = %v, want nil", err)
			}
		})
	}
}
