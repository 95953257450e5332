package protocol

import (
	"bytes"
	"encoding/json"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/text/unicode/norm"
)

// FuzzDecode checks Decode against an independent oracle built on
// encoding/json, and checks that every accepted frame re-encodes into valid
// server frames. The seed corpus is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"type":"join","mode":"text","interests":["Go"," MUSIC "],"seq":1}`))
	f.Add([]byte(`{"type":"signal","room":"r","data":{"candidate":null},"seq":2}`))
	f.Add([]byte(`{"type":"chat","text":"\u00a0 hi \u3000","seq":3.0}`))
	f.Add([]byte(`{"type":"chat","text":"\u0000e\u0301\u202e\n\tx\r"}`))
	f.Add([]byte(`{"type":"report","reason":"\u001b\u2066spam\u0308"}`))
	f.Add([]byte(`{"type":"next","pow":"eyJhIjoxfQ==","seq":4}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		var fr Frame
		err := Decode(in, &fr)
		if !bytes.Equal(in, orig) {
			t.Fatalf("Decode modified its input")
		}

		// Deterministic, and independent of what the Frame held before.
		fr2 := Frame{Type: TypeChat, Seq: 99, HasSeq: true, Text: "stale", Data: []byte("1")}
		err2 := Decode(in, &fr2)
		if (err == nil) != (err2 == nil) || (err != nil && *err != *err2) || !sameFrame(fr, fr2) {
			t.Fatalf("Decode not deterministic: %v %+v / %v %+v", err, fr, err2, fr2)
		}

		want, wantCode, validJSON := oracle(in)
		if !validJSON && err == nil {
			t.Fatalf("invalid JSON accepted: %q -> %+v", in, fr)
		}
		if err != nil {
			if err.Code != CodeBadMessage && err.Code != CodeUnknownType {
				t.Fatalf("Decode(%q): unexpected code %s", in, err.Code)
			}
			if err.Message == "" {
				t.Fatalf("Decode(%q): empty error message", in)
			}
			// The message goes back to the client in an error frame.
			if !jsontext.Value(AppendError(nil, 1, err.Code, err.Message)).IsValid() {
				t.Fatalf("error frame for %q is not valid JSON", in)
			}
		}
		if validJSON {
			gotCode := Code("")
			if err != nil {
				gotCode = err.Code
			}
			if gotCode != wantCode {
				t.Fatalf("Decode(%q) = %v, oracle says %q", in, err, wantCode)
			}
			// The seq is known whenever the JSON is valid, even if the
			// frame is refused.
			if fr.HasSeq != want.HasSeq || fr.Seq != want.Seq {
				t.Fatalf("Decode(%q): seq %d (has %v), oracle %d (has %v)", in, fr.Seq, fr.HasSeq, want.Seq, want.HasSeq)
			}
		}
		if err != nil {
			return
		}
		if !sameFrame(fr, want) {
			t.Fatalf("Decode(%q)\n got    %+v (data %q)\n oracle %+v (data %q)", in, fr, fr.Data, want, want.Data)
		}
		checkAccepted(t, in, fr)
	})
}

// checkAccepted asserts what must hold for any accepted frame, including
// that relaying it produces valid server frames.
func checkAccepted(t *testing.T, in []byte, fr Frame) {
	t.Helper()
	switch fr.Type {
	case TypeJoin:
		if _, ok := ParseMode(fr.Mode.String()); !ok {
			t.Fatalf("join with invalid mode %v", fr.Mode)
		}
		for _, s := range fr.Interests {
			if !utf8.ValidString(s) {
				t.Fatalf("interest not UTF-8: %q", s)
			}
		}
		normal := NormalizeInterests(fr.Interests)
		checkNormalized(t, normal)
		for _, s := range normal {
			checkHygienic(t, "interest", s, false)
		}
		parseFrame(t, AppendMatched(nil, 1, "r", true, fr.Mode, normal))
	case TypeSignal:
		if !json.Valid(fr.Data) || !jsontext.Value(fr.Data).IsValid() {
			t.Fatalf("signal data not valid JSON: %q", fr.Data)
		}
		if !bytes.Contains(in, fr.Data) {
			t.Fatalf("signal data %q not from the input", fr.Data)
		}
		out := AppendSignal(nil, 1, fr.Room, fr.Data)
		m := parseFrame(t, out)
		if m["room"] != fr.Room {
			t.Fatalf("relayed room %q, want %q", m["room"], fr.Room)
		}
		if !bytes.Contains(out, fr.Data) {
			t.Fatalf("relayed data changed")
		}
	case TypeChat:
		if fr.Text == "" || strings.TrimFunc(fr.Text, unicode.IsSpace) != fr.Text || !utf8.ValidString(fr.Text) {
			t.Fatalf("bad chat text %q", fr.Text)
		}
		checkHygienic(t, "chat text", fr.Text, true)
		if m := parseFrame(t, AppendChat(nil, 1, fr.Text)); m["text"] != fr.Text {
			t.Fatalf("chat text %q relayed as %q", fr.Text, m["text"])
		}
	case TypeTyping:
		parseFrame(t, AppendTyping(nil, 1, fr.Typing))
	case TypeReport:
		if !utf8.ValidString(fr.Reason) {
			t.Fatalf("reason not UTF-8: %q", fr.Reason)
		}
		checkHygienic(t, "reason", fr.Reason, false)
	case TypePing:
		if m := parseFrame(t, AppendPong(nil, 1, fr.Seq)); m["type"] != "pong" {
			t.Fatalf("pong encoded as %v", m)
		}
	case TypeWatch:
		parseFrame(t, AppendCounts(nil, 1, 3, 1, 0))
	case TypeNext, TypeLeave:
	default:
		t.Fatalf("accepted frame of type %v", fr.Type)
	}
}

// oracle decodes a client frame with encoding/json, following protocol.md
// step 3 independently of Decode. validJSON is false when in is not exactly
// one strictly valid JSON value (RFC 8259 plus: UTF-8, no duplicate names,
// as Decode requires); then only "some error" is expected.
func oracle(in []byte) (want Frame, code Code, validJSON bool) {
	if !json.Valid(in) || !utf8.Valid(in) || !jsontext.Value(in).IsValid() {
		return Frame{}, CodeBadMessage, false
	}
	var obj map[string]json.RawMessage
	if bytes.TrimLeft(in, " \t\r\n")[0] != '{' || json.Unmarshal(in, &obj) != nil {
		return Frame{}, CodeBadMessage, true
	}
	isNull := func(raw json.RawMessage) bool { return raw == nil || string(raw) == "null" }
	str := func(raw json.RawMessage) (string, bool) {
		var s string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	}

	seqOK := true
	if raw := obj["seq"]; !isNull(raw) {
		n, ok := exactInt(raw)
		if ok {
			want.Seq, want.HasSeq = n, true
		} else {
			seqOK = false
		}
	}
	fail := func(c Code) (Frame, Code, bool) {
		return Frame{Seq: want.Seq, HasSeq: want.HasSeq}, c, true
	}

	typ, ok := str(obj["type"])
	if !ok {
		return fail(CodeBadMessage)
	}
	for _, t := range []Type{TypeJoin, TypeNext, TypeLeave, TypeSignal, TypeChat, TypeTyping, TypeReport, TypePing, TypeWatch} {
		if t.String() == typ {
			want.Type = t
		}
	}
	if want.Type == 0 {
		return fail(CodeUnknownType)
	}
	if !seqOK {
		return fail(CodeBadMessage)
	}
	if want.Type == TypeJoin || want.Type == TypeNext {
		if raw := obj["pow"]; !isNull(raw) {
			s, ok := str(raw)
			if !ok || len(s) > MaxPowBytes {
				return fail(CodeBadMessage)
			}
			want.Pow = s
		}
	}
	switch want.Type {
	case TypeJoin:
		want.Mode = ModeVideo
		if raw := obj["mode"]; !isNull(raw) {
			s, ok := str(raw)
			switch {
			case ok && s == "video":
			case ok && s == "text":
				want.Mode = ModeText
			default:
				return fail(CodeBadMessage)
			}
		}
		if raw := obj["interests"]; !isNull(raw) {
			var list []json.RawMessage
			if raw[0] != '[' || json.Unmarshal(raw, &list) != nil {
				return fail(CodeBadMessage)
			}
			for _, e := range list {
				s, ok := str(e)
				if !ok {
					return fail(CodeBadMessage)
				}
				want.Interests = append(want.Interests, s)
			}
		}
	case TypeSignal:
		raw := obj["data"]
		if isNull(raw) {
			return fail(CodeBadMessage)
		}
		want.Data = raw
		if raw := obj["room"]; !isNull(raw) {
			s, ok := str(raw)
			if !ok {
				return fail(CodeBadMessage)
			}
			want.Room, want.HasRoom = s, true
		}
	case TypeChat:
		s, ok := str(obj["text"])
		if !ok {
			return fail(CodeBadMessage)
		}
		want.Text = strings.TrimFunc(oracleHygiene(s, true), unicode.IsSpace)
		if want.Text == "" {
			return fail(CodeBadMessage)
		}
	case TypeTyping:
		switch string(obj["typing"]) {
		case "true":
			want.Typing = true
		case "false":
		default:
			return fail(CodeBadMessage)
		}
	case TypeReport:
		if raw := obj["reason"]; !isNull(raw) {
			s, ok := str(raw)
			if !ok {
				return fail(CodeBadMessage)
			}
			want.Reason = oracleHygiene(s, false)
		}
	case TypeWatch:
		switch string(obj["counts"]) {
		case "true":
			want.Counts = true
		case "false":
		default:
			return fail(CodeBadMessage)
		}
	}
	return want, "", true
}

// oracleHygiene is protocol 1.1 "Text hygiene" written from the text, apart
// from hygiene.go: drop category Cc (but newline and tab in chat) and the
// bidirectional controls listed one by one, then compose to NFC.
func oracleHygiene(s string, chat bool) string {
	bidi := map[rune]bool{0x202a: true, 0x202b: true, 0x202c: true, 0x202d: true, 0x202e: true,
		0x2066: true, 0x2067: true, 0x2068: true, 0x2069: true}
	var b strings.Builder
	for _, r := range s {
		if chat && (r == '\n' || r == '\t') {
			b.WriteRune(r)
			continue
		}
		if unicode.Is(unicode.Cc, r) || bidi[r] {
			continue
		}
		b.WriteRune(r)
	}
	return norm.NFC.String(b.String())
}

// exactInt reads a JSON number as an exact rational and accepts it if it is
// an integer Decode supports (magnitude below 10^18).
func exactInt(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	// big.Rat would try to build 10^exponent for a huge exponent; such
	// numbers are never integers of the supported range unless zero.
	s := string(raw)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, exp := s[:i], strings.TrimLeft(s[i+1:], "+")
		if len(strings.TrimLeft(strings.TrimPrefix(exp, "-"), "0")) > 3 {
			if strings.Trim(mant, "-0.") == "" {
				return 0, true
			}
			return 0, false
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok || !r.IsInt() {
		return 0, false
	}
	limit := big.NewInt(1_000_000_000_000_000_000)
	n := r.Num()
	if new(big.Int).Abs(n).Cmp(limit) >= 0 {
		return 0, false
	}
	return n.Int64(), true
}

// TestOracleAgrees runs the oracle over the unit-test tables, so that the
// fuzzer's reference is itself checked against hand-written expectations.
func TestOracleAgrees(t *testing.T) {
	for _, in := range []string{
		`{"type":"join","interests":["a"],"seq":1e3}`, `{"type":"next","seq":1.5}`, `{"type":"chat","text":"\u3000"}`,
		`{"type":"signal","data": [1, 2] ,"room":null}`, `{"type":"nope","seq":2}`, `{"typ\u0065":"leave"}`,
		`{"type":"typing","typing":true}`, `{"type":"report","reason":5}`, `{"type":"next","seq":9007199254740993}`,
		`{"type":"next","seq":1e400}`, `{"type":"next","seq":0e400}`, `{"type":"next","seq":1000000000000000000}`,
	} {
		var got Frame
		err := Decode([]byte(in), &got)
		want, code, valid := oracle([]byte(in))
		gotCode := Code("")
		if err != nil {
			gotCode = err.Code
		}
		if !valid || gotCode != code || !reflect.DeepEqual([2]any{got.Seq, got.HasSeq}, [2]any{want.Seq, want.HasSeq}) ||
			(err == nil && !sameFrame(got, want)) {
			t.Errorf("%s: Decode %v %+v; oracle %q %+v valid=%v", in, err, got, code, want, valid)
		}
	}
}
