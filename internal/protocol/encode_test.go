package protocol

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// parseFrame checks that b is one strictly valid JSON object (valid UTF-8,
// no duplicate names, nothing after it) and returns it as a map. Numbers
// stay json.Number so that large seqs compare exactly.
func parseFrame(t *testing.T, b []byte) map[string]any {
	t.Helper()
	if !utf8.Valid(b) || !jsontext.Value(b).IsValid() || !json.Valid(b) {
		t.Fatalf("not valid JSON: %q", b)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
	return m
}

// trickyStrings are strings an encoder written by hand could get wrong.
var trickyStrings = []string{
	"",
	"plain",
	`"quoted" and \backslashed\`,
	"control \x00\x01\x08\x0b\x0c\x1b\x1f \t\r\n\x7f",
	"</script><script>alert(1)</script>",
	"<!-- & &amp; -->",
	"line\u2028para\u2029sep",
	"é日本語🙂\U0010FFFF",
	"\ufeffbom",
	"\\u0041 not an escape",
}

// invalidUTF8 are byte strings that are not UTF-8; encoders must still emit
// valid JSON.
var invalidUTF8 = []string{
	"\xff",
	"a\xc3",            // truncated sequence
	"\xed\xa0\x80",     // surrogate half
	"\xc0\xaf",         // overlong
	"ok\xfe\xffok",     // stray bytes inside
	"\xf4\x90\x80\x80", // above U+10FFFF
}

// replaceInvalid replaces each invalid byte by U+FFFD, as the encoders do.
func replaceInvalid(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r) // ranging yields U+FFFD for each invalid byte
	}
	return b.String()
}

func TestAppendFrames(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want map[string]any
	}{
		{"waiting", AppendWaiting(nil, 1), map[string]any{"type": "waiting", "seq": json.Number("1")}},
		{"reported", AppendReported(nil, 7), map[string]any{"type": "reported", "seq": json.Number("7")}},
		{"reported filed", AppendReportedFiled(nil, 8, "r_1", "tok\"en"), map[string]any{"type": "reported", "seq": json.Number("8"), "report": "r_1", "evidenceToken": "tok\"en"}},
		{"reported unfiled", AppendReportedFiled(nil, 9, "", ""), map[string]any{"type": "reported", "seq": json.Number("9")}},
		{"matched", AppendMatched(nil, 2, "r_1", true, ModeVideo, []string{"music", "go"}),
			map[string]any{"type": "matched", "seq": json.Number("2"), "room": "r_1", "initiator": true, "mode": "video",
				"commonInterests": []any{"music", "go"}}},
		{"matched text, no common interests", AppendMatched(nil, 3, "r_2", false, ModeText, nil),
			map[string]any{"type": "matched", "seq": json.Number("3"), "room": "r_2", "initiator": false, "mode": "text",
				"commonInterests": []any{}}},
		{"matched empty common interests", AppendMatched(nil, 3, "r", false, ModeText, []string{}),
			map[string]any{"type": "matched", "seq": json.Number("3"), "room": "r", "initiator": false, "mode": "text",
				"commonInterests": []any{}}},
		{"signal", AppendSignal(nil, 4, "r_1", []byte(`{"candidate":null}`)),
			map[string]any{"type": "signal", "seq": json.Number("4"), "room": "r_1", "data": map[string]any{"candidate": nil}}},
		{"chat", AppendChat(nil, 5, "hello"), map[string]any{"type": "chat", "seq": json.Number("5"), "text": "hello"}},
		{"typing true", AppendTyping(nil, 6, true), map[string]any{"type": "typing", "seq": json.Number("6"), "typing": true}},
		{"typing false", AppendTyping(nil, 6, false), map[string]any{"type": "typing", "seq": json.Number("6"), "typing": false}},
		{"large seq", AppendWaiting(nil, 1<<62), map[string]any{"type": "waiting", "seq": json.Number("4611686018427387904")}},
	}
	for _, reason := range []string{"next", "left", "disconnected", "reported"} {
		tests = append(tests, struct {
			name string
			got  []byte
			want map[string]any
		}{"peer_left " + reason, AppendPeerLeft(nil, 8, reason), map[string]any{"type": "peer_left", "seq": json.Number("8"), "reason": reason}})
	}
	for _, code := range Codes {
		tests = append(tests, struct {
			name string
			got  []byte
			want map[string]any
		}{"error " + string(code), AppendError(nil, 9, code, "why: \"x\""),
			map[string]any{"type": "error", "seq": json.Number("9"), "code": string(code), "message": `why: "x"`}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseFrame(t, tc.got); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%s\n got %#v\nwant %#v", tc.got, got, tc.want)
			}
		})
	}
}

func TestAppendExactBytes(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{string(AppendWaiting(nil, 1)), `{"type":"waiting","seq":1}`},
		{string(AppendReported(nil, 12)), `{"type":"reported","seq":12}`},
		{string(AppendPong(nil, 13, 5)), `{"type":"pong","seq":13,"ack":5}`},
		{string(AppendCounts(nil, 14, 7, 2, 1)), `{"type":"counts","seq":14,"online":7,"waiting":{"video":2,"text":1}}`},
		{string(AppendTyping(nil, 3, true)), `{"type":"typing","seq":3,"typing":true}`},
		{string(AppendChat(nil, 2, "hi")), `{"type":"chat","seq":2,"text":"hi"}`},
		{string(AppendMatched(nil, 4, "r", false, ModeText, nil)), `{"type":"matched","seq":4,"room":"r","initiator":false,"mode":"text","commonInterests":[]}`},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %s\nwant %s", tc.got, tc.want)
		}
	}
}

// TestAppendStrings runs every string-carrying encoder over strings that are
// easy to get wrong; the output must be valid JSON holding the same string
// (or, for invalid UTF-8, the string with U+FFFD in place of bad bytes).
func TestAppendStrings(t *testing.T) {
	all := append(append([]string{}, trickyStrings...), invalidUTF8...)
	for _, s := range all {
		want := replaceInvalid(s)
		check := func(what string, b []byte, field string) {
			t.Helper()
			m := parseFrame(t, b)
			if m[field] != want {
				t.Errorf("%s(%q): %s = %q, want %q", what, s, field, m[field], want)
			}
		}
		check("AppendChat", AppendChat(nil, 1, s), "text")
		check("AppendPeerLeft", AppendPeerLeft(nil, 1, s), "reason")
		check("AppendError", AppendError(nil, 1, Code(s), "m"), "code")
		check("AppendError", AppendError(nil, 1, CodeBadMessage, s), "message")
		check("AppendSignal", AppendSignal(nil, 1, s, []byte(`1`)), "room")
		check("AppendMatched", AppendMatched(nil, 1, s, true, ModeVideo, nil), "room")
		m := parseFrame(t, AppendMatched(nil, 1, "r", true, ModeVideo, []string{s, "x", s}))
		if got := m["commonInterests"]; !reflect.DeepEqual(got, []any{want, "x", want}) {
			t.Errorf("AppendMatched common %q: %q", s, got)
		}
		if got := string(AppendString(nil, s)); !jsontext.Value(got).IsValid() {
			t.Errorf("AppendString(%q) = %s: not valid JSON", s, got)
		}
	}
}

// TestAppendSignalEmbedsData checks the relay hot path: data goes out byte
// for byte as the partner sent it.
func TestAppendSignalEmbedsData(t *testing.T) {
	for _, data := range []string{
		`{"sdp":{"type":"answer","sdp":"v=0\r\n"}}`,
		`{ "candidate" : { "candidate" : "" , "sdpMid" : "0" } }`,
		`[1, 2.50, -0, 1e3]`,
		`"\u00e9\ud83d\ude00"`,
		`null`, `true`, `0`,
		"{\n\t\"x\": \"</script>\"\n}",
	} {
		got := AppendSignal(nil, 11, "r_9", []byte(data))
		want := `{"type":"signal","seq":11,"room":"r_9","data":` + data + `}`
		if string(got) != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
		m := parseFrame(t, got)
		var wantData any
		if err := json.Unmarshal([]byte(data), &wantData); err != nil {
			t.Fatal(err)
		}
		var gotData any
		raw, _ := json.Marshal(m["data"])
		json.Unmarshal(raw, &gotData)
		if !reflect.DeepEqual(gotData, wantData) {
			t.Errorf("data %s came back as %#v", data, gotData)
		}
	}
}

// TestAppendKeepsPrefix: Append* append; they never touch what dst holds.
func TestAppendKeepsPrefix(t *testing.T) {
	prefix := "PREFIX"
	for name, b := range map[string][]byte{
		"waiting":   AppendWaiting([]byte(prefix), 1),
		"matched":   AppendMatched([]byte(prefix), 1, "r", true, ModeVideo, []string{"a"}),
		"signal":    AppendSignal([]byte(prefix), 1, "r", []byte(`{}`)),
		"chat":      AppendChat([]byte(prefix), 1, "x"),
		"typing":    AppendTyping([]byte(prefix), 1, true),
		"peer_left": AppendPeerLeft([]byte(prefix), 1, "next"),
		"reported":  AppendReported([]byte(prefix), 1),
		"error":     AppendError([]byte(prefix), 1, CodeBanned, "no"),
	} {
		if !strings.HasPrefix(string(b), prefix) {
			t.Errorf("%s: prefix lost: %q", name, b)
			continue
		}
		parseFrame(t, b[len(prefix):])
	}
}

// TestAppendNoAllocs: with a buffer of sufficient capacity the relay
// encoders do not allocate.
func TestAppendNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 1024)
	data := []byte(`{"candidate":{"candidate":"candidate:1 1 udp 1 192.0.2.1 1 typ host","sdpMid":"0"}}`)
	for name, fn := range map[string]func(){
		"signal":    func() { buf = AppendSignal(buf[:0], 123456, "r_8f3a2c1d9e", data) },
		"chat":      func() { buf = AppendChat(buf[:0], 123456, "hello \"there\" é") },
		"typing":    func() { buf = AppendTyping(buf[:0], 123456, true) },
		"matched":   func() { buf = AppendMatched(buf[:0], 1, "r_8f3a2c1d9e", true, ModeText, []string{"music", "go"}) },
		"peer_left": func() { buf = AppendPeerLeft(buf[:0], 1, "disconnected") },
		"error":     func() { buf = AppendError(buf[:0], 1, CodeNotChatting, "not in a chat") },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocs per call, want 0", name, n)
		}
	}
}

func TestEncodeWelcomeFresh(t *testing.T) {
	b := EncodeWelcome(Welcome{
		Type:        "ignored", // EncodeWelcome always writes "welcome"
		Session:     "s_1",
		ResumeToken: "tok",
		ICEServers: []ICEServer{
			{URLs: []string{"stun:127.0.0.1:3478"}},
			{URLs: []string{"turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"}, Username: "1700000000:s_1", Credential: "abc="},
		},
		Online: 42,
	})
	got := parseFrame(t, b)
	want := map[string]any{
		"type": "welcome", "session": "s_1", "resumeToken": "tok", "resumed": false, "online": json.Number("42"),
		"iceServers": []any{
			map[string]any{"urls": []any{"stun:127.0.0.1:3478"}},
			map[string]any{"urls": []any{"turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"},
				"username": "1700000000:s_1", "credential": "abc="},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s\n got %#v\nwant %#v", b, got, want)
	}
}

func TestEncodeWelcomeDefaults(t *testing.T) {
	got := parseFrame(t, EncodeWelcome(Welcome{}))
	want := map[string]any{"type": "welcome", "session": "", "resumeToken": "", "resumed": false,
		"iceServers": []any{}, "online": json.Number("0")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
}

func TestEncodeWelcomeResumed(t *testing.T) {
	zero, five := int64(0), int64(5)
	t.Run("chatting, lastSeq 0", func(t *testing.T) {
		chat := &ChatInfo{Room: "r_1", Initiator: true, Mode: "video", CommonInterests: []string{"go"}}
		got := parseFrame(t, EncodeWelcome(Welcome{Session: "s", ResumeToken: "t2", Resumed: true, Online: 2,
			State: "chatting", Chat: chat, LastSeq: &zero}))
		want := map[string]any{"type": "welcome", "session": "s", "resumeToken": "t2", "resumed": true,
			"iceServers": []any{}, "online": json.Number("2"), "state": "chatting", "lastSeq": json.Number("0"),
			"chat": map[string]any{"room": "r_1", "initiator": true, "mode": "video", "commonInterests": []any{"go"}}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %#v\nwant %#v", got, want)
		}
	})
	t.Run("chat without common interests", func(t *testing.T) {
		chat := &ChatInfo{Room: "r_1", Mode: "text"}
		got := parseFrame(t, EncodeWelcome(Welcome{Resumed: true, State: "chatting", Chat: chat, LastSeq: &five}))
		wantChat := map[string]any{"room": "r_1", "initiator": false, "mode": "text", "commonInterests": []any{}}
		if !reflect.DeepEqual(got["chat"], wantChat) || got["lastSeq"] != json.Number("5") {
			t.Fatalf("got %#v", got)
		}
		if chat.CommonInterests != nil {
			t.Fatal("EncodeWelcome modified the caller's ChatInfo")
		}
	})
	t.Run("idle", func(t *testing.T) {
		got := parseFrame(t, EncodeWelcome(Welcome{Resumed: true, State: "idle", LastSeq: &zero}))
		if _, ok := got["chat"]; ok || got["state"] != "idle" || got["lastSeq"] != json.Number("0") {
			t.Fatalf("got %#v", got)
		}
	})
}

func TestEncodeWelcomeStrings(t *testing.T) {
	all := append(append([]string{}, trickyStrings...), invalidUTF8...)
	for _, s := range all {
		got := parseFrame(t, EncodeWelcome(Welcome{Session: s, ResumeToken: s,
			ICEServers: []ICEServer{{URLs: []string{s}, Username: s + "u", Credential: s + "c"}},
			State:      s + "x", Chat: &ChatInfo{Room: s, Mode: s, CommonInterests: []string{s}}}))
		want := replaceInvalid(s)
		if got["session"] != want || got["resumeToken"] != want || got["chat"].(map[string]any)["room"] != want {
			t.Errorf("welcome with %q: %#v", s, got)
		}
	}
}

func TestCodes(t *testing.T) {
	seen := map[Code]bool{}
	for _, c := range Codes {
		if c == "" || seen[c] || strings.ToLower(string(c)) != string(c) {
			t.Errorf("bad or duplicate code %q", c)
		}
		seen[c] = true
	}
	for _, c := range []Code{CodeBadMessage, CodeUnknownType, CodeBadState, CodeNotChatting, CodeTooLong,
		CodeRateLimited, CodeBanned, CodeOverloaded} {
		if !seen[c] {
			t.Errorf("Codes lacks %q", c)
		}
	}
}

// TestAppendMatchedICE: protocol 1.1 matched carries the chat's ICE servers
// in the shape of welcome.iceServers (RTCIceServer dictionaries); strings
// that need escaping stay valid JSON; nil omits the field (1.0 frame).
func TestAppendMatchedICE(t *testing.T) {
	ice := []ICEServer{
		{URLs: []string{"stun:127.0.0.1:3478"}},
		{URLs: []string{"turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"}, Username: "1700000000:s_1", Credential: "r/2S+c="},
	}
	got := parseFrame(t, AppendMatchedICE(nil, 2, "r_1", true, ModeVideo, []string{"go"}, ice))
	want := map[string]any{"type": "matched", "seq": json.Number("2"), "room": "r_1", "initiator": true, "mode": "video",
		"commonInterests": []any{"go"},
		"iceServers": []any{
			map[string]any{"urls": []any{"stun:127.0.0.1:3478"}},
			map[string]any{"urls": []any{"turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"},
				"username": "1700000000:s_1", "credential": "r/2S+c="},
		}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
	// The same bytes as encoding/json gives the welcome's list.
	b, err := json.Marshal(ice)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(appendICEServers(nil, ice)); s != string(b) {
		t.Errorf("appendICEServers = %s, encoding/json = %s", s, b)
	}
	if s := string(AppendMatchedICE(nil, 4, "r", false, ModeText, nil, []ICEServer{})); s != `{"type":"matched","seq":4,"room":"r","initiator":false,"mode":"text","commonInterests":[],"iceServers":[]}` {
		t.Errorf("empty list: %s", s)
	}
	if s := string(AppendMatchedICE(nil, 4, "r", false, ModeText, nil, nil)); strings.Contains(s, "iceServers") {
		t.Errorf("nil list: %s, want no iceServers", s)
	}
	for _, s := range append(append([]string{}, trickyStrings...), invalidUTF8...) {
		m := parseFrame(t, AppendMatchedICE(nil, 1, "r", true, ModeVideo, nil, []ICEServer{{URLs: []string{s}, Username: s, Credential: s}}))
		srv := m["iceServers"].([]any)[0].(map[string]any)
		if w := replaceInvalid(s); srv["urls"].([]any)[0] != w || (s != "" && srv["username"] != w) {
			t.Errorf("iceServers with %q: %#v", s, srv)
		}
	}
}

func TestEncodeWelcomeChatICE(t *testing.T) {
	chat := &ChatInfo{Room: "r_1", Mode: "video", ICEServers: []ICEServer{{URLs: []string{"turn:h:3478"}, Username: "1:s", Credential: "c"}}}
	got := parseFrame(t, EncodeWelcome(Welcome{Resumed: true, TURN: true, State: "chatting", Chat: chat}))
	if got["turn"] != true {
		t.Errorf("welcome.turn = %v, want true", got["turn"])
	}
	want := []any{map[string]any{"urls": []any{"turn:h:3478"}, "username": "1:s", "credential": "c"}}
	if !reflect.DeepEqual(got["chat"].(map[string]any)["iceServers"], want) {
		t.Fatalf("chat.iceServers: %#v", got["chat"])
	}
}
