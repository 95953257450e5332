package protocol

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// join and next carry pow as a string of at most MaxPowBytes; other types
// ignore the field.
func TestDecodePow(t *testing.T) {
	atLimit := strings.Repeat("A", MaxPowBytes)
	tests := []struct {
		in      string
		want    string
		badCode bool
	}{
		{`{"type":"join","pow":"abc="}`, "abc=", false},
		{`{"type":"next","pow":"abc="}`, "abc=", false},
		{`{"type":"next","pow":null}`, "", false},
		{`{"type":"join","pow":"` + atLimit + `"}`, atLimit, false},
		{`{"type":"join","pow":"` + atLimit + `A"}`, "", true},
		{`{"type":"next","pow":123}`, "", true},
		{`{"type":"join","pow":{"number":1}}`, "", true},
		{`{"type":"leave","pow":123}`, "", false},
		{`{"type":"chat","text":"hi","pow":"abc="}`, "", false},
	}
	for _, tc := range tests {
		f, err := decodeString(tc.in)
		switch {
		case tc.badCode && (err == nil || err.Code != CodeBadMessage):
			t.Errorf("%.60s: %v, want bad_message", tc.in, err)
		case !tc.badCode && err != nil:
			t.Errorf("%.60s: %v", tc.in, err)
		case !tc.badCode && f.Pow != tc.want:
			t.Errorf("%.60s: pow %q, want %q", tc.in, f.Pow, tc.want)
		}
	}
}

func TestEncodePow(t *testing.T) {
	c := PowChallenge{Algorithm: "SHA-256", Challenge: "ab", MaxNumber: 50000, Salt: "00?expires=1&", Signature: "cd"}
	m := parseFrame(t, AppendPowRequired(nil, 4, "solve this first", c))
	if m["type"] != "error" || m["code"] != "pow_required" || m["message"] != "solve this first" || m["seq"] != json.Number("4") {
		t.Fatalf("frame %v", m)
	}
	b, _ := json.Marshal(m["pow"])
	var got PowChallenge
	if err := json.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("pow %s (%v), want %+v", b, err, c)
	}

	w := parseFrame(t, EncodeWelcome(Welcome{Session: "s", Pow: &c}))
	if p, ok := w["pow"].(map[string]any); !ok || p["salt"] != c.Salt || p["maxnumber"] != json.Number("50000") {
		t.Fatalf("welcome pow %v", w["pow"])
	}
	if w := parseFrame(t, EncodeWelcome(Welcome{Session: "s"})); w["pow"] != nil {
		t.Fatalf("welcome without pow has %v", w["pow"])
	}
}
