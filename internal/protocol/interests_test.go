package protocol

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalizeInterests(t *testing.T) {
	a32, a33 := strings.Repeat("a", 32), strings.Repeat("a", 33)
	e32, e33 := strings.Repeat("é", 32), strings.Repeat("é", 33) // 64 and 66 bytes
	j32 := strings.Repeat("日", 32)                               // 96 bytes
	emoji32 := strings.Repeat("🙂", 32)                           // 128 bytes
	nums := func(from, to int) []string {
		var out []string
		for i := from; i <= to; i++ {
			out = append(out, fmt.Sprint("i", i))
		}
		return out
	}
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"nil", nil, nil},
		{"empty", []string{}, nil},
		{"trim and lower-case", []string{" Music ", "GO", "\tRock\n"}, []string{"music", "go", "rock"}},
		{"unicode white space trimmed", []string{"\u00a0Jazz\u3000", "\u2003Blues\u0085"}, []string{"jazz", "blues"}},
		{"inner space kept", []string{"Hip  Hop"}, []string{"hip  hop"}},
		{"unicode lower-case", []string{"ÇAY", "ΣΟΦΙΑ", "Straße", "ÅNGSTRÖM"}, []string{"çay", "σοφια", "straße", "ångström"}},
		{"empty ones dropped", []string{"", " ", "\t\n", "\u3000", "x"}, []string{"x"}},
		{"duplicates after trim and lower-case, first kept", []string{"Rock", "rock ", " ROCK", "pop", "Pop"}, []string{"rock", "pop"}},
		{"duplicates only equal after lower-casing", []string{"Ä", "ä", "Σ", "σ"}, []string{"ä", "σ"}},
		{"32 code points kept, 33 dropped", []string{a33, a32, e33, e32, j32, emoji32}, []string{a32, e32, j32, emoji32}},
		{"length counted after trimming", []string{"  " + a32 + "\u3000"}, []string{a32}},
		{"length counted in code points not bytes", []string{strings.Repeat("日", 11)}, []string{strings.Repeat("日", 11)}},
		{"first 10 kept", nums(1, 15), nums(1, 10)},
		{"exactly 10", nums(1, 10), nums(1, 10)},
		{"dropped ones do not use a slot", append([]string{"", a33, "  ", e33}, nums(1, 12)...), nums(1, 10)},
		{"duplicates do not use a slot", append([]string{"i1", "I1", " i1 ", "i2", "I2"}, nums(3, 12)...), nums(1, 10)},
		{"dedupe before the cut", append(nums(1, 9), "I1", "i2", "i10", "i11"), nums(1, 10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			got := NormalizeInterests(in)
			if len(got) == 0 && len(tc.want) == 0 {
				if got == nil {
					t.Fatal("want a non-nil empty slice")
				}
			} else if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("NormalizeInterests(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			if !reflect.DeepEqual(in, tc.in) {
				t.Fatalf("input modified: %q -> %q", tc.in, in)
			}
			checkNormalized(t, got)
		})
	}
}

// checkNormalized asserts the invariants every output of NormalizeInterests
// has, whatever the input.
func checkNormalized(t *testing.T, out []string) {
	t.Helper()
	if len(out) > MaxInterests {
		t.Fatalf("%d interests kept, max %d", len(out), MaxInterests)
	}
	seen := map[string]bool{}
	for _, s := range out {
		switch {
		case s == "":
			t.Fatalf("empty interest kept: %q", out)
		case utf8.RuneCountInString(s) > MaxInterestRunes:
			t.Fatalf("interest over %d code points kept: %q", MaxInterestRunes, s)
		case strings.TrimSpace(s) != s:
			t.Fatalf("untrimmed interest: %q", s)
		case strings.ToLower(s) != s:
			t.Fatalf("interest not lower-case: %q", s)
		case seen[s]:
			t.Fatalf("duplicate interest %q in %q", s, out)
		}
		seen[s] = true
	}
}

// TestNormalizeInterestsIdempotent: normalising twice changes nothing more.
func TestNormalizeInterestsIdempotent(t *testing.T) {
	in := []string{" A ", "b", "B", "", strings.Repeat("x", 40), "ÄÖ", "\u00a0c\u00a0", "d", "e", "f", "g", "h", "i", "j", "k"}
	once := NormalizeInterests(in)
	twice := NormalizeInterests(once)
	if !reflect.DeepEqual(once, twice) {
		t.Fatalf("not idempotent: %q then %q", once, twice)
	}
}
