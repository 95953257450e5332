package protocol

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// decodeString runs Decode on a fresh copy of in, so that cases cannot
// affect each other through shared buffers.
func decodeString(in string) (Frame, *Error) {
	var f Frame
	err := Decode([]byte(in), &f)
	return f, err
}

// sameFrame compares two frames field by field; Data is compared as bytes and
// an empty Interests list equals a nil one.
func sameFrame(got, want Frame) bool {
	if !bytes.Equal(got.Data, want.Data) || len(got.Interests) != len(want.Interests) {
		return false
	}
	got.Data, want.Data = nil, nil
	if len(got.Interests) == 0 {
		got.Interests, want.Interests = nil, nil
	}
	return reflect.DeepEqual(got, want)
}

func TestDecodeValid(t *testing.T) {
	long := strings.Repeat("é", MaxChatRunes+500)
	tests := []struct {
		name string
		in   string
		want Frame
	}{
		// join
		{"join minimal", `{"type":"join"}`, Frame{Type: TypeJoin, Mode: ModeVideo}},
		{"join text", `{"type":"join","mode":"text"}`, Frame{Type: TypeJoin, Mode: ModeText}},
		{"join video explicit", `{"type":"join","mode":"video"}`, Frame{Type: TypeJoin, Mode: ModeVideo}},
		{"join null optionals", `{"type":"join","mode":null,"interests":null}`, Frame{Type: TypeJoin, Mode: ModeVideo}},
		{"join interests as sent", `{"type":"join","interests":[" Music ","GO","music",""]}`,
			Frame{Type: TypeJoin, Mode: ModeVideo, Interests: []string{" Music ", "GO", "music", ""}}},
		{"join empty interests", `{"type":"join","interests":[]}`, Frame{Type: TypeJoin, Mode: ModeVideo}},
		{"join escaped interests", `{"type":"join","interests":["caf\u00e9","a\"b","\ud83d\ude00"]}`,
			Frame{Type: TypeJoin, Mode: ModeVideo, Interests: []string{"café", `a"b`, "😀"}}},
		{"join fields before type", `{"interests":["x"],"mode":"text","seq":2,"type":"join"}`,
			Frame{Type: TypeJoin, Mode: ModeText, Interests: []string{"x"}, Seq: 2, HasSeq: true}},
		{"join escaped mode", `{"type":"join","mode":"t\u0065xt"}`, Frame{Type: TypeJoin, Mode: ModeText}},

		// next, leave
		{"next", `{"type":"next"}`, Frame{Type: TypeNext}},
		{"leave", `{"type":"leave"}`, Frame{Type: TypeLeave}},
		{"next ignores fields of other types", `{"type":"next","mode":5,"text":null,"typing":"x","data":null,"interests":{}}`, Frame{Type: TypeNext}},
		{"leave ignores unknown fields", `{"type":"leave","x":{"y":[1,{"z":null}]},"extra":true,"Type":"chat"}`, Frame{Type: TypeLeave}},

		// signal
		{"signal with room", `{"type":"signal","room":"r1","data":{"sdp":{"type":"offer","sdp":"v=0\r\n"}}}`,
			Frame{Type: TypeSignal, Room: "r1", HasRoom: true, Data: []byte(`{"sdp":{"type":"offer","sdp":"v=0\r\n"}}`)}},
		{"signal without room", `{"type":"signal","data":{"candidate":null}}`,
			Frame{Type: TypeSignal, Data: []byte(`{"candidate":null}`)}},
		{"signal null room is absent", `{"type":"signal","room":null,"data":1}`,
			Frame{Type: TypeSignal, Data: []byte(`1`)}},
		{"signal empty room is present", `{"type":"signal","room":"","data":1}`,
			Frame{Type: TypeSignal, HasRoom: true, Data: []byte(`1`)}},
		{"signal escaped room", `{"type":"signal","room":"r\u005f1","data":[]}`,
			Frame{Type: TypeSignal, Room: "r_1", HasRoom: true, Data: []byte(`[]`)}},
		{"signal data over the limit is not Decode's business", `{"type":"signal","data":"` + strings.Repeat("x", MaxSignalBytes+10) + `"}`,
			Frame{Type: TypeSignal, Data: []byte(`"` + strings.Repeat("x", MaxSignalBytes+10) + `"`)}},

		// chat
		{"chat", `{"type":"chat","text":"hi"}`, Frame{Type: TypeChat, Text: "hi"}},
		{"chat trimmed ascii", `{"type":"chat","text":" \t\r\n hi there \n"}`, Frame{Type: TypeChat, Text: "hi there"}},
		{"chat trimmed unicode", `{"type":"chat","text":"\u00a0\u3000\u2003\u0085\u2028hi\u202f\u205f\u1680\u2029"}`, Frame{Type: TypeChat, Text: "hi"}},
		{"chat raw unicode spaces", "{\"type\":\"chat\",\"text\":\"\u3000 hé \u00a0\"}", Frame{Type: TypeChat, Text: "hé"}},
		{"chat inner spaces kept", `{"type":"chat","text":"a  \n b"}`, Frame{Type: TypeChat, Text: "a  \n b"}},
		{"chat zero-width space is not white space", `{"type":"chat","text":"\u200b"}`, Frame{Type: TypeChat, Text: "\u200b"}},
		{"chat escapes", `{"type":"chat","text":"\"q\" \\ \/ \u00e9 \ud83d\ude00"}`, Frame{Type: TypeChat, Text: `"q" \ / é 😀`}},
		{"chat html kept verbatim", `{"type":"chat","text":"</script><b>"}`, Frame{Type: TypeChat, Text: "</script><b>"}},
		{"chat over the limit is not Decode's business", `{"type":"chat","text":"` + long + `"}`, Frame{Type: TypeChat, Text: long}},

		// typing
		{"typing true", `{"type":"typing","typing":true}`, Frame{Type: TypeTyping, Typing: true}},
		{"typing false", `{"type":"typing","typing":false}`, Frame{Type: TypeTyping}},

		// report
		{"report without reason", `{"type":"report"}`, Frame{Type: TypeReport}},
		{"ping", `{"type":"ping"}`, Frame{Type: TypePing}},
		{"ping with seq", `{"type":"ping","seq":4}`, Frame{Type: TypePing, Seq: 4, HasSeq: true}},
		{"watch on", `{"type":"watch","counts":true}`, Frame{Type: TypeWatch, Counts: true}},
		{"watch off", `{"type":"watch","counts":false}`, Frame{Type: TypeWatch}},
		{"report null reason", `{"type":"report","reason":null}`, Frame{Type: TypeReport}},
		{"report reason", `{"type":"report","reason":"spam \u00e9"}`, Frame{Type: TypeReport, Reason: "spam é"}},
		{"report empty reason", `{"type":"report","reason":""}`, Frame{Type: TypeReport}},

		// JSON spelling
		{"escaped type", `{"type":"\u006a\u006f\u0069\u006e"}`, Frame{Type: TypeJoin, Mode: ModeVideo}},
		{"escaped member names", `{"typ\u0065":"chat","t\u0065xt":" x ","\u0073eq":3}`, Frame{Type: TypeChat, Text: "x", Seq: 3, HasSeq: true}},
		{"white space everywhere", " \r\n\t{ \"type\" :\t\"typing\" ,\n\"typing\" : true , \"seq\" : 4 }\r\n ", Frame{Type: TypeTyping, Typing: true, Seq: 4, HasSeq: true}},
		{"seq null is absent", `{"type":"next","seq":null}`, Frame{Type: TypeNext}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeString(tc.in)
			if err != nil {
				t.Fatalf("Decode(%.200s) = %v, want success", tc.in, err)
			}
			if !sameFrame(got, tc.want) {
				t.Fatalf("Decode(%.200s)\n got %+v (data %.100q)\nwant %+v (data %.100q)", tc.in, got, got.Data, tc.want, tc.want.Data)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		code    Code
		seq     int64 // expected f.Seq; f.HasSeq must be seq != 0
		message string
	}{
		// Not exactly one JSON object.
		{name: "empty", in: ``, code: CodeBadMessage},
		{name: "white space", in: " \n", code: CodeBadMessage},
		{name: "null", in: `null`, code: CodeBadMessage},
		{name: "bool", in: `true`, code: CodeBadMessage},
		{name: "number", in: `1`, code: CodeBadMessage},
		{name: "string", in: `"next"`, code: CodeBadMessage},
		{name: "empty array", in: `[]`, code: CodeBadMessage},
		{name: "array of frame", in: `[{"type":"next"}]`, code: CodeBadMessage},
		{name: "truncated", in: `{"type":"next"`, code: CodeBadMessage},
		{name: "truncated after brace", in: `{`, code: CodeBadMessage},
		{name: "truncated value", in: `{"type":"ne`, code: CodeBadMessage},
		{name: "trailing comma", in: `{"type":"next",}`, code: CodeBadMessage},
		{name: "extra closing brace", in: `{"type":"next"}}`, code: CodeBadMessage},
		{name: "trailing garbage", in: `{"type":"next"} x`, code: CodeBadMessage},
		{name: "trailing bracket", in: `{"type":"next"}]`, code: CodeBadMessage},
		{name: "trailing NUL", in: "{\"type\":\"next\"}\x00", code: CodeBadMessage},
		{name: "two objects", in: `{"type":"next"}{"type":"leave"}`, code: CodeBadMessage},
		{name: "two objects on two lines", in: "{\"type\":\"next\"}\n{\"type\":\"leave\"}", code: CodeBadMessage},
		{name: "object then number", in: `{"type":"next"} 1`, code: CodeBadMessage},
		{name: "byte order mark", in: "\ufeff{\"type\":\"next\"}", code: CodeBadMessage},
		{name: "single quotes", in: `{'type':'next'}`, code: CodeBadMessage},
		{name: "bare name", in: `{type:"next"}`, code: CodeBadMessage},
		{name: "comment", in: `{"type":"next"/* c */}`, code: CodeBadMessage},
		{name: "NaN", in: `{"type":"next","x":NaN}`, code: CodeBadMessage},
		{name: "leading zero", in: `{"type":"next","x":01}`, code: CodeBadMessage},
		{name: "raw control char", in: "{\"type\":\"chat\",\"text\":\"a\x01b\"}", code: CodeBadMessage},
		{name: "raw newline in string", in: "{\"type\":\"chat\",\"text\":\"a\nb\"}", code: CodeBadMessage},
		{name: "bad escape", in: `{"type":"chat","text":"\x41"}`, code: CodeBadMessage},
		{name: "invalid UTF-8 in value", in: "{\"type\":\"chat\",\"text\":\"\xff\"}", code: CodeBadMessage},
		{name: "invalid UTF-8 in name", in: "{\"type\":\"next\",\"\xc3\":1}", code: CodeBadMessage},
		{name: "invalid UTF-8 in ignored field", in: "{\"type\":\"next\",\"x\":[\"\xed\xa0\x80\"]}", code: CodeBadMessage},
		{name: "invalid UTF-8 in signal data", in: "{\"type\":\"signal\",\"data\":\"\xfe\"}", code: CodeBadMessage},
		{name: "lone surrogate escape", in: `{"type":"chat","text":"\ud800"}`, code: CodeBadMessage},
		{name: "duplicate type", in: `{"type":"next","type":"next"}`, code: CodeBadMessage},
		{name: "duplicate type, different values", in: `{"type":"chat","text":"a","type":"next"}`, code: CodeBadMessage},
		{name: "duplicate via escape", in: `{"type":"next","typ\u0065":"leave"}`, code: CodeBadMessage},
		{name: "duplicate ignored field", in: `{"type":"next","x":1,"x":2}`, code: CodeBadMessage},
		{name: "duplicate seq", in: `{"type":"next","seq":1,"seq":2}`, code: CodeBadMessage, seq: 1},
		{name: "duplicate data", in: `{"type":"signal","data":1,"data":2}`, code: CodeBadMessage},
		{name: "too deep", in: `{"type":"signal","data":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, code: CodeBadMessage},

		// type
		{name: "no type", in: `{}`, code: CodeBadMessage},
		{name: "no type, other fields", in: `{"text":"hi"}`, code: CodeBadMessage},
		{name: "type is case-sensitive", in: `{"TYPE":"next"}`, code: CodeBadMessage},
		{name: "type null", in: `{"type":null}`, code: CodeBadMessage},
		{name: "type number", in: `{"type":1}`, code: CodeBadMessage},
		{name: "type bool", in: `{"type":true}`, code: CodeBadMessage},
		{name: "type array", in: `{"type":["join"]}`, code: CodeBadMessage},
		{name: "type object", in: `{"type":{"name":"join"}}`, code: CodeBadMessage},
		{name: "unknown type", in: `{"type":"unknown"}`, code: CodeUnknownType, message: `"unknown"`},
		{name: "empty type", in: `{"type":""}`, code: CodeUnknownType},
		{name: "upper-case type", in: `{"type":"JOIN"}`, code: CodeUnknownType},
		{name: "type with space", in: `{"type":"join "}`, code: CodeUnknownType},
		{name: "server type", in: `{"type":"welcome"}`, code: CodeUnknownType},
		{name: "unknown type with fields", in: `{"type":"hello","text":5}`, code: CodeUnknownType},
		{name: "watch without counts", in: `{"type":"watch"}`, code: CodeBadMessage},
		{name: "watch counts not a boolean", in: `{"type":"watch","counts":1}`, code: CodeBadMessage},

		// join
		{name: "mode audio", in: `{"type":"join","mode":"audio"}`, code: CodeBadMessage, message: "audio"},
		{name: "mode empty", in: `{"type":"join","mode":""}`, code: CodeBadMessage},
		{name: "mode upper-case", in: `{"type":"join","mode":"Video"}`, code: CodeBadMessage},
		{name: "mode number", in: `{"type":"join","mode":1}`, code: CodeBadMessage},
		{name: "mode bool", in: `{"type":"join","mode":true}`, code: CodeBadMessage},
		{name: "mode array", in: `{"type":"join","mode":["text"]}`, code: CodeBadMessage},
		{name: "mode object", in: `{"type":"join","mode":{}}`, code: CodeBadMessage},
		{name: "interests string", in: `{"type":"join","interests":"music"}`, code: CodeBadMessage},
		{name: "interests number", in: `{"type":"join","interests":1}`, code: CodeBadMessage},
		{name: "interests bool", in: `{"type":"join","interests":false}`, code: CodeBadMessage},
		{name: "interests object", in: `{"type":"join","interests":{"a":"b"}}`, code: CodeBadMessage},
		{name: "interests of numbers", in: `{"type":"join","interests":[1]}`, code: CodeBadMessage},
		{name: "interests with null", in: `{"type":"join","interests":["a",null]}`, code: CodeBadMessage},
		{name: "interests nested", in: `{"type":"join","interests":["a",["b"]]}`, code: CodeBadMessage},
		{name: "interests with object", in: `{"type":"join","interests":[{}]}`, code: CodeBadMessage},

		// signal
		{name: "signal without data", in: `{"type":"signal","room":"r"}`, code: CodeBadMessage},
		// data is required; the lead chose to read null as absent for it too.
		{name: "signal null data", in: `{"type":"signal","data":null}`, code: CodeBadMessage},
		{name: "room number", in: `{"type":"signal","room":1,"data":{}}`, code: CodeBadMessage},
		{name: "room bool", in: `{"type":"signal","room":false,"data":{}}`, code: CodeBadMessage},
		{name: "room array", in: `{"type":"signal","room":["r"],"data":{}}`, code: CodeBadMessage},
		{name: "room object", in: `{"type":"signal","room":{},"data":{}}`, code: CodeBadMessage},

		// chat
		{name: "chat without text", in: `{"type":"chat"}`, code: CodeBadMessage},
		{name: "chat null text", in: `{"type":"chat","text":null}`, code: CodeBadMessage},
		{name: "chat number text", in: `{"type":"chat","text":1}`, code: CodeBadMessage},
		{name: "chat bool text", in: `{"type":"chat","text":true}`, code: CodeBadMessage},
		{name: "chat array text", in: `{"type":"chat","text":["hi"]}`, code: CodeBadMessage},
		{name: "chat object text", in: `{"type":"chat","text":{}}`, code: CodeBadMessage},
		{name: "chat empty", in: `{"type":"chat","text":""}`, code: CodeBadMessage},
		{name: "chat spaces", in: `{"type":"chat","text":"   "}`, code: CodeBadMessage},
		{name: "chat ascii white space", in: `{"type":"chat","text":"\t\n\r \f\u000b"}`, code: CodeBadMessage},
		{name: "chat unicode white space", in: `{"type":"chat","text":"\u00a0\u3000\u2028\u2029\u0085\u1680\u2000\u200a\u202f\u205f"}`, code: CodeBadMessage},

		// typing
		{name: "typing missing", in: `{"type":"typing"}`, code: CodeBadMessage},
		{name: "typing null", in: `{"type":"typing","typing":null}`, code: CodeBadMessage},
		{name: "typing string", in: `{"type":"typing","typing":"true"}`, code: CodeBadMessage},
		{name: "typing number", in: `{"type":"typing","typing":1}`, code: CodeBadMessage},
		{name: "typing array", in: `{"type":"typing","typing":[true]}`, code: CodeBadMessage},
		{name: "typing object", in: `{"type":"typing","typing":{}}`, code: CodeBadMessage},

		// report
		{name: "reason number", in: `{"type":"report","reason":1}`, code: CodeBadMessage},
		{name: "reason bool", in: `{"type":"report","reason":true}`, code: CodeBadMessage},
		{name: "reason array", in: `{"type":"report","reason":["spam"]}`, code: CodeBadMessage},
		{name: "reason object", in: `{"type":"report","reason":{}}`, code: CodeBadMessage},

		// seq of the wrong shape: bad_message, and no seq to report.
		{name: "seq fraction", in: `{"type":"next","seq":1.5}`, code: CodeBadMessage},
		{name: "seq small fraction", in: `{"type":"next","seq":0.1}`, code: CodeBadMessage},
		{name: "seq negative exponent", in: `{"type":"next","seq":1e-1}`, code: CodeBadMessage},
		{name: "seq string", in: `{"type":"next","seq":"1"}`, code: CodeBadMessage},
		{name: "seq bool", in: `{"type":"next","seq":true}`, code: CodeBadMessage},
		{name: "seq array", in: `{"type":"next","seq":[1]}`, code: CodeBadMessage},
		{name: "seq object", in: `{"type":"next","seq":{}}`, code: CodeBadMessage},

		// A valid seq is reported even though the frame is refused, because
		// the duplicate check comes before the shape check.
		{name: "seq with empty chat", in: `{"type":"chat","text":" ","seq":7}`, code: CodeBadMessage, seq: 7},
		{name: "seq with unknown type", in: `{"seq":8,"type":"nope"}`, code: CodeUnknownType, seq: 8},
		{name: "seq without type", in: `{"seq":9}`, code: CodeBadMessage, seq: 9},
		{name: "seq with type number", in: `{"seq":10,"type":5}`, code: CodeBadMessage, seq: 10},
		{name: "seq after type number", in: `{"type":5,"seq":10}`, code: CodeBadMessage, seq: 10},
		{name: "seq with bad mode", in: `{"type":"join","mode":"audio","seq":11}`, code: CodeBadMessage, seq: 11},
		{name: "seq with missing data", in: `{"type":"signal","seq":12}`, code: CodeBadMessage, seq: 12},
		{name: "seq with bad typing", in: `{"type":"typing","typing":"yes","seq":14}`, code: CodeBadMessage, seq: 14},
		{name: "seq with bad interests", in: `{"type":"join","interests":[1],"seq":1.0}`, code: CodeBadMessage, seq: 1},
		{name: "seq before trailing garbage", in: `{"type":"next","seq":13} x`, code: CodeBadMessage, seq: 13},
		{name: "seq before a syntax error", in: `{"seq":15,"type":"next",}`, code: CodeBadMessage, seq: 15},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := decodeString(tc.in)
			if err == nil {
				t.Fatalf("Decode(%.200q) = nil, want %s; frame %+v", tc.in, tc.code, f)
			}
			if err.Code != tc.code {
				t.Fatalf("Decode(%.200q) = %v, want code %s", tc.in, err, tc.code)
			}
			if err.Message == "" || !strings.Contains(err.Message, tc.message) {
				t.Errorf("message %q should mention %q", err.Message, tc.message)
			}
			if err.Error() != string(err.Code)+": "+err.Message {
				t.Errorf("Error() = %q", err.Error())
			}
			if f.HasSeq != (tc.seq != 0) || f.Seq != tc.seq {
				t.Errorf("seq = %d (has %v), want %d (has %v)", f.Seq, f.HasSeq, tc.seq, tc.seq != 0)
			}
		})
	}
}

func TestDecodeSeq(t *testing.T) {
	tests := []struct {
		lit string
		seq int64
		ok  bool
	}{
		{"1", 1, true},
		{"42", 42, true},
		{"0", 0, true},
		{"-0", 0, true},
		{"-1", -1, true}, // an integer; the duplicate check makes it harmless
		{"1.0", 1, true},
		{"1.000", 1, true},
		{"1e0", 1, true},
		{"1E+0", 1, true},
		{"10E-1", 1, true},
		{"0.1e1", 1, true},
		{"100e-2", 1, true},
		{"1e3", 1000, true},
		{"12.5e1", 125, true},
		{"-2.50e1", -25, true},
		{"0e400", 0, true},
		{"0.0", 0, true},
		{"9007199254740993", 9007199254740993, true}, // 2^53+1: a float64 would round it
		{"999999999999999999", 999999999999999999, true},
		{"1.5", 0, false},
		{"0.5", 0, false},
		{"1e-1", 0, false},
		{"1.0000000000000000001", 0, false},
		{"4503599627370496.5", 0, false}, // 2^52+0.5 rounds to an integer as a float64
		{"9007199254740993.5", 0, false},
		{"1e-400", 0, false},
		{"1e400", 0, false},
		{"1000000000000000000", 0, false}, // beyond the exact range Decode supports
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"1e999999999999999999999", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.lit, func(t *testing.T) {
			f, err := decodeString(`{"type":"next","seq":` + tc.lit + `}`)
			if !tc.ok {
				if err == nil || err.Code != CodeBadMessage || f.HasSeq {
					t.Fatalf("seq %s: got %v, frame %+v; want bad_message without seq", tc.lit, err, f)
				}
				return
			}
			if err != nil {
				t.Fatalf("seq %s: %v", tc.lit, err)
			}
			if !f.HasSeq || f.Seq != tc.seq {
				t.Fatalf("seq %s: got %d (has %v), want %d", tc.lit, f.Seq, f.HasSeq, tc.seq)
			}
		})
	}
}

// TestDecodeSignalData checks that signal.data is the exact input bytes of
// the value, whatever its kind and wherever it sits in the frame.
func TestDecodeSignalData(t *testing.T) {
	values := []string{
		`{"sdp":{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}}`,
		`{"candidate":{"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"candidate":null}`,
		`{ "a" : [ 1 , 2 ,	{ } ] ,` + "\n" + ` "b" : null }`,
		`{}`, `[]`, `""`, `"s"`, `0`, `-1.5e+10`, `true`, `false`,
		`[1,"two",{"three":[3]},null,true]`,
		`"\u00e9\n\"\\\/\ud83d\ude00"`,
		`"日本語 🙂"`,
		`{"x":"</script>"}`,
		strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100),
		strings.Repeat(`[`, 1000) + strings.Repeat(`]`, 1000),
	}
	layouts := []struct {
		name   string
		before string // frame text before the value
		after  string // frame text after the value
	}{
		{"last", `{"type":"signal","room":"r","data":`, `}`},
		{"first", `{"data":`, `,"type":"signal","room":"r"}`},
		{"middle", `{"type":"signal","data":`, `,"room":"r"}`},
		{"spaced", "{ \"type\" : \"signal\" , \"data\" :\r\n\t ", " \n\t, \"room\":\"r\" }"},
		{"spaced last", "{\"room\":\"r\",\"type\":\"signal\",\"data\"\t:\t", "\n}\n"},
	}
	for _, l := range layouts {
		for i, v := range values {
			t.Run(fmt.Sprintf("%s/%d", l.name, i), func(t *testing.T) {
				in := []byte(l.before + v + l.after)
				var f Frame
				if err := Decode(in, &f); err != nil {
					t.Fatalf("Decode(%.200s): %v", in, err)
				}
				if string(f.Data) != v {
					t.Fatalf("data = %.200q, want %.200q", f.Data, v)
				}
				if f.Type != TypeSignal || f.Room != "r" || !f.HasRoom {
					t.Fatalf("frame %+v", f)
				}
				// Data is a window onto the caller's buffer, not a copy.
				if &f.Data[0] != &in[len(l.before)] {
					t.Fatalf("data does not alias the input at offset %d", len(l.before))
				}
				// Appending to Data must not clobber the rest of the frame.
				_ = append(f.Data, "XXXXXXXX"...)
				if string(in) != l.before+v+l.after {
					t.Fatalf("appending to Data changed the input: %.200q", in)
				}
			})
		}
	}
}

func TestDecodeResetsFrame(t *testing.T) {
	f := Frame{Type: TypeSignal, Seq: 9, HasSeq: true, Mode: ModeText, Interests: []string{"x"},
		Data: []byte("1"), Room: "r", HasRoom: true, Text: "t", Typing: true, Reason: "why"}
	if err := Decode([]byte(`{"type":"leave"}`), &f); err != nil {
		t.Fatal(err)
	}
	if !sameFrame(f, Frame{Type: TypeLeave}) {
		t.Fatalf("stale fields after Decode: %+v", f)
	}
	f = Frame{Seq: 9, HasSeq: true, Text: "t"}
	if err := Decode([]byte(`nope`), &f); err == nil {
		t.Fatal("want error")
	}
	if f.HasSeq || f.Seq != 0 || f.Text != "" {
		t.Fatalf("stale fields after a failed Decode: %+v", f)
	}
}

func TestDecodeLeavesInputAlone(t *testing.T) {
	for _, in := range []string{
		`{"type":"chat","text":"  \u00e9 \"x\"  ","seq":1}`,
		`{"typ\u0065":"signal","data":{"a":"\n"},"room":"r"}`,
		`{"type":"join","interests":["A","\u0062"]}`,
		`{"type":"join","interests":[1]}`,
		`{"type":"next"} trailing`,
	} {
		b := []byte(in)
		var f Frame
		Decode(b, &f)
		if string(b) != in {
			t.Errorf("Decode modified its input: %q -> %q", in, b)
		}
	}
}

// TestDecodeResultsOutliveReuse checks that nothing in a decoded Frame
// points into Decode's pooled buffers: later Decode calls, which reuse them,
// must not change earlier results.
func TestDecodeResultsOutliveReuse(t *testing.T) {
	var chat, join, sig, rep Frame
	sigIn := []byte(`{"type":"signal","room":"room-1","data":{"k":"v"}}`)
	mustDecode(t, `{"type":"chat","text":"  hello world  "}`, &chat)
	mustDecode(t, `{"type":"join","mode":"text","interests":["aaa","bbb"]}`, &join)
	if err := Decode(sigIn, &sig); err != nil {
		t.Fatal(err)
	}
	mustDecode(t, `{"type":"report","reason":"because"}`, &rep)
	for range 50 {
		var f Frame
		mustDecode(t, `{"type":"chat","text":"  XXXXX-XXXXX  ","interests":["ccc","ddd"],"room":"ZZZZ-Z"}`, &f)
		mustDecode(t, `{"type":"join","mode":"video","interests":["eee","fff"]}`, &f)
		mustDecode(t, `{"type":"signal","room":"room-2","data":{"q":"w"}}`, &f)
	}
	if chat.Text != "hello world" || join.Mode != ModeText || !reflect.DeepEqual(join.Interests, []string{"aaa", "bbb"}) ||
		sig.Room != "room-1" || string(sig.Data) != `{"k":"v"}` || rep.Reason != "because" {
		t.Fatalf("earlier results changed: %+v %+v %+v %+v", chat, join, sig, rep)
	}
}

func mustDecode(t *testing.T, in string, f *Frame) {
	t.Helper()
	if err := Decode([]byte(in), f); err != nil {
		t.Fatalf("Decode(%s): %v", in, err)
	}
}

// TestDecodeConcurrent exercises the decoder pool from many goroutines; run
// with -race.
func TestDecodeConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				text := fmt.Sprintf("g%d-i%d", g, i)
				data := fmt.Sprintf(`{"n":%d,"s":"%s"}`, i, text)
				var f Frame
				in := fmt.Sprintf(`{"type":"signal","seq":%d,"room":"%s","data":%s}`, i+1, text, data)
				if err := Decode([]byte(in), &f); err != nil || string(f.Data) != data || f.Room != text || f.Seq != int64(i+1) {
					errs <- fmt.Sprintf("signal %s: %v %+v", in, err, f)
					return
				}
				in = fmt.Sprintf(`{"type":"chat","text":" %s "}`, text)
				if err := Decode([]byte(in), &f); err != nil || f.Text != text {
					errs <- fmt.Sprintf("chat %s: %v %+v", in, err, f)
					return
				}
				if err := Decode([]byte(`{"type":"join","mode":"audio"}`), &f); err == nil || err.Code != CodeBadMessage {
					errs <- fmt.Sprintf("bad join: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestTypeString(t *testing.T) {
	want := map[Type]string{TypeJoin: "join", TypeNext: "next", TypeLeave: "leave", TypeSignal: "signal",
		TypeChat: "chat", TypeTyping: "typing", TypeReport: "report", TypePing: "ping", TypeWatch: "watch", 0: "unknown", 99: "unknown"}
	for typ, s := range want {
		if typ.String() != s {
			t.Errorf("Type(%d).String() = %q, want %q", typ, typ.String(), s)
		}
		if typ != 0 && typ != 99 && parseType([]byte(s)) != typ {
			t.Errorf("parseType(%q) = %v", s, parseType([]byte(s)))
		}
	}
}

func TestMode(t *testing.T) {
	for _, m := range Modes {
		got, ok := ParseMode(m.String())
		if !ok || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, ok)
		}
	}
	if ModeVideo.String() != "video" || ModeText.String() != "text" || Mode(0).String() != "invalid" {
		t.Errorf("mode names: %s %s %s", ModeVideo, ModeText, Mode(0))
	}
	for _, s := range []string{"", "audio", "Video", "TEXT", " text", "invalid"} {
		if m, ok := ParseMode(s); ok || m != 0 {
			t.Errorf("ParseMode(%q) = %v, %v; want 0, false", s, m, ok)
		}
	}
}
